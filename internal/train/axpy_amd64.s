#include "textflag.h"

// func axpy(s float64, x, y []float64)
//
// y[j] = y[j] + s*x[j] for j < min(len(x), len(y)): the product rounded, then the
// sum rounded, per element, as the Go loop of axpy_other.go (MULPD and ADDPD are
// two MULSD and two ADDSD in one).
TEXT ·axpy(SB), NOSPLIT, $0-56
	MOVQ    x_base+8(FP), SI
	MOVQ    y_base+32(FP), DI
	MOVQ    x_len+16(FP), CX
	CMPQ    y_len+40(FP), CX
	CMOVQLT y_len+40(FP), CX // CX = min(len(x), len(y))
	MOVSD   s+0(FP), X0
	SHUFPD  $0, X0, X0       // X0 = {s, s}
	XORQ    AX, AX
	MOVQ    CX, BX
	SHRQ    $3, BX           // BX = n / 8
	JZ      tail2

loop8:
	MOVUPD (SI)(AX*8), X1
	MOVUPD 16(SI)(AX*8), X2
	MOVUPD 32(SI)(AX*8), X3
	MOVUPD 48(SI)(AX*8), X4
	MULPD  X0, X1
	MULPD  X0, X2
	MULPD  X0, X3
	MULPD  X0, X4
	MOVUPD (DI)(AX*8), X5
	MOVUPD 16(DI)(AX*8), X6
	MOVUPD 32(DI)(AX*8), X7
	MOVUPD 48(DI)(AX*8), X8
	ADDPD  X1, X5
	ADDPD  X2, X6
	ADDPD  X3, X7
	ADDPD  X4, X8
	MOVUPD X5, (DI)(AX*8)
	MOVUPD X6, 16(DI)(AX*8)
	MOVUPD X7, 32(DI)(AX*8)
	MOVUPD X8, 48(DI)(AX*8)
	ADDQ   $8, AX
	DECQ   BX
	JNZ    loop8

tail2: // two at a time, then the last one

	LEAQ   2(AX), BX
	CMPQ   BX, CX
	JGT    tail
	MOVUPD (SI)(AX*8), X1
	MULPD  X0, X1
	MOVUPD (DI)(AX*8), X5
	ADDPD  X1, X5
	MOVUPD X5, (DI)(AX*8)
	MOVQ   BX, AX
	JMP    tail2

tail:
	CMPQ  AX, CX
	JGE   done
	MOVSD (SI)(AX*8), X1
	MULSD X0, X1
	MOVSD (DI)(AX*8), X5
	ADDSD X1, X5
	MOVSD X5, (DI)(AX*8)
	INCQ  AX
	JMP   tail

done:
	RET
