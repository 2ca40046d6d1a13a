#include "textflag.h"

// func axpySSE2(s float64, x, y []float64)
//
// y[j] = y[j] + s*x[j] for j < min(len(x), len(y)): the product rounded, then the
// sum rounded, per element, as the Go loop of axpy_other.go (MULPD and ADDPD are
// two MULSD and two ADDSD in one).
TEXT ·axpySSE2(SB), NOSPLIT, $0-56
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

// func axpy4SSE2(s *[4]float64, x0, x1, x2, x3, y []float64)
//
// y[j] = (((y[j] + s0*x0[j]) + s1*x1[j]) + s2*x2[j]) + s3*x3[j] for j < len(y),
// every product and every sum rounded, as the Go loop of axpy4_other.go (MULPD
// and ADDPD are two MULSD and two ADDSD in one).
TEXT ·axpy4SSE2(SB), NOSPLIT, $0-128
	MOVQ   s+0(FP), R8
	MOVSD  0(R8), X0
	SHUFPD $0, X0, X0
	MOVSD  8(R8), X1
	SHUFPD $0, X1, X1
	MOVSD  16(R8), X2
	SHUFPD $0, X2, X2
	MOVSD  24(R8), X3
	SHUFPD $0, X3, X3
	MOVQ   x0_base+8(FP), R9
	MOVQ   x1_base+32(FP), R10
	MOVQ   x2_base+56(FP), R11
	MOVQ   x3_base+80(FP), R12
	MOVQ   y_base+104(FP), DI
	MOVQ   y_len+112(FP), CX
	XORQ   AX, AX
	MOVQ   CX, BX
	SHRQ   $1, BX // BX = n / 2
	JZ     tail

loop2:
	MOVUPD (DI)(AX*8), X4
	MOVUPD (R9)(AX*8), X5
	MULPD  X0, X5
	ADDPD  X5, X4
	MOVUPD (R10)(AX*8), X6
	MULPD  X1, X6
	ADDPD  X6, X4
	MOVUPD (R11)(AX*8), X7
	MULPD  X2, X7
	ADDPD  X7, X4
	MOVUPD (R12)(AX*8), X8
	MULPD  X3, X8
	ADDPD  X8, X4
	MOVUPD X4, (DI)(AX*8)
	ADDQ   $2, AX
	DECQ   BX
	JNZ    loop2

tail:
	CMPQ  AX, CX
	JGE   done
	MOVSD (DI)(AX*8), X4
	MOVSD (R9)(AX*8), X5
	MULSD X0, X5
	ADDSD X5, X4
	MOVSD (R10)(AX*8), X6
	MULSD X1, X6
	ADDSD X6, X4
	MOVSD (R11)(AX*8), X7
	MULSD X2, X7
	ADDSD X7, X4
	MOVSD (R12)(AX*8), X8
	MULSD X3, X8
	ADDSD X8, X4
	MOVSD X4, (DI)(AX*8)

done:
	RET
