#include "textflag.h"

// AVX kernels: the same operations as the Go loops of kernels.go, per element
// (VMULPD/VMULPS then VADDPD/VADDPS: each product rounded, then each sum; never
// an FMA instruction), four float64 or eight float32 at a time. TestAxpyKernels
// checks the bits against the Go loop.

// func axpyAVX(s float64, x, y []float64)
TEXT ·axpyAVX(SB), NOSPLIT, $0-56
	MOVQ         x_base+8(FP), SI
	MOVQ         y_base+32(FP), DI
	MOVQ         x_len+16(FP), CX
	CMPQ         y_len+40(FP), CX
	CMOVQLT      y_len+40(FP), CX     // CX = min(len(x), len(y))
	VBROADCASTSD s+0(FP), Y0
	XORQ         AX, AX

loop16:
	LEAQ    16(AX), BX
	CMPQ    BX, CX
	JGT     loop4
	VMULPD  (SI)(AX*8), Y0, Y1
	VMULPD  32(SI)(AX*8), Y0, Y2
	VMULPD  64(SI)(AX*8), Y0, Y3
	VMULPD  96(SI)(AX*8), Y0, Y4
	VADDPD  (DI)(AX*8), Y1, Y1
	VADDPD  32(DI)(AX*8), Y2, Y2
	VADDPD  64(DI)(AX*8), Y3, Y3
	VADDPD  96(DI)(AX*8), Y4, Y4
	VMOVUPD Y1, (DI)(AX*8)
	VMOVUPD Y2, 32(DI)(AX*8)
	VMOVUPD Y3, 64(DI)(AX*8)
	VMOVUPD Y4, 96(DI)(AX*8)
	MOVQ    BX, AX
	JMP     loop16

loop4:
	LEAQ    4(AX), BX
	CMPQ    BX, CX
	JGT     tail
	VMULPD  (SI)(AX*8), Y0, Y1
	VADDPD  (DI)(AX*8), Y1, Y1
	VMOVUPD Y1, (DI)(AX*8)
	MOVQ    BX, AX
	JMP     loop4

tail:
	CMPQ   AX, CX
	JGE    done
	VMOVSD (SI)(AX*8), X1
	VMULSD X0, X1, X1
	VADDSD (DI)(AX*8), X1, X1
	VMOVSD X1, (DI)(AX*8)
	INCQ   AX
	JMP    tail

done:
	VZEROUPPER
	RET

// func axpy32AVX(s float32, x, y []float32)
TEXT ·axpy32AVX(SB), NOSPLIT, $0-56
	MOVQ         x_base+8(FP), SI
	MOVQ         y_base+32(FP), DI
	MOVQ         x_len+16(FP), CX
	CMPQ         y_len+40(FP), CX
	CMOVQLT      y_len+40(FP), CX     // CX = min(len(x), len(y))
	VBROADCASTSS s+0(FP), Y0
	XORQ         AX, AX

loop32:
	LEAQ    32(AX), BX
	CMPQ    BX, CX
	JGT     loop8
	VMULPS  (SI)(AX*4), Y0, Y1
	VMULPS  32(SI)(AX*4), Y0, Y2
	VMULPS  64(SI)(AX*4), Y0, Y3
	VMULPS  96(SI)(AX*4), Y0, Y4
	VADDPS  (DI)(AX*4), Y1, Y1
	VADDPS  32(DI)(AX*4), Y2, Y2
	VADDPS  64(DI)(AX*4), Y3, Y3
	VADDPS  96(DI)(AX*4), Y4, Y4
	VMOVUPS Y1, (DI)(AX*4)
	VMOVUPS Y2, 32(DI)(AX*4)
	VMOVUPS Y3, 64(DI)(AX*4)
	VMOVUPS Y4, 96(DI)(AX*4)
	MOVQ    BX, AX
	JMP     loop32

loop8:
	LEAQ    8(AX), BX
	CMPQ    BX, CX
	JGT     tail
	VMULPS  (SI)(AX*4), Y0, Y1
	VADDPS  (DI)(AX*4), Y1, Y1
	VMOVUPS Y1, (DI)(AX*4)
	MOVQ    BX, AX
	JMP     loop8

tail:
	CMPQ   AX, CX
	JGE    done
	VMOVSS (SI)(AX*4), X1
	VMULSS X0, X1, X1
	VADDSS (DI)(AX*4), X1, X1
	VMOVSS X1, (DI)(AX*4)
	INCQ   AX
	JMP    tail

done:
	VZEROUPPER
	RET
