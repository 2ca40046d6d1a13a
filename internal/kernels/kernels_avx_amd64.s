#include "textflag.h"

// AVX kernels: the same operations as the Go loops of kernels.go, per element
// (VMULPD/VMULPS then VADDPD/VADDPS: each product rounded, then each sum; never
// an FMA instruction), four float64 or eight float32 at a time. TestAxpyKernels
// and TestAxpy4Kernels check the bits against the Go loops.

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

// func axpy4AVX(s *[4]float64, x0, x1, x2, x3, y []float64)
//
// y[j] = (((y[j] + s0*x0[j]) + s1*x1[j]) + s2*x2[j]) + s3*x3[j] for j < len(y).
TEXT ·axpy4AVX(SB), NOSPLIT, $0-128
	MOVQ         s+0(FP), R8
	VBROADCASTSD 0(R8), Y0
	VBROADCASTSD 8(R8), Y1
	VBROADCASTSD 16(R8), Y2
	VBROADCASTSD 24(R8), Y3
	MOVQ         x0_base+8(FP), R9
	MOVQ         x1_base+32(FP), R10
	MOVQ         x2_base+56(FP), R11
	MOVQ         x3_base+80(FP), R12
	MOVQ         y_base+104(FP), DI
	MOVQ         y_len+112(FP), CX
	XORQ         AX, AX

loop8:
	LEAQ    8(AX), BX
	CMPQ    BX, CX
	JGT     loop4
	VMOVUPD (DI)(AX*8), Y4
	VMOVUPD 32(DI)(AX*8), Y5
	VMULPD  (R9)(AX*8), Y0, Y6
	VMULPD  32(R9)(AX*8), Y0, Y7
	VADDPD  Y6, Y4, Y4
	VADDPD  Y7, Y5, Y5
	VMULPD  (R10)(AX*8), Y1, Y6
	VMULPD  32(R10)(AX*8), Y1, Y7
	VADDPD  Y6, Y4, Y4
	VADDPD  Y7, Y5, Y5
	VMULPD  (R11)(AX*8), Y2, Y6
	VMULPD  32(R11)(AX*8), Y2, Y7
	VADDPD  Y6, Y4, Y4
	VADDPD  Y7, Y5, Y5
	VMULPD  (R12)(AX*8), Y3, Y6
	VMULPD  32(R12)(AX*8), Y3, Y7
	VADDPD  Y6, Y4, Y4
	VADDPD  Y7, Y5, Y5
	VMOVUPD Y4, (DI)(AX*8)
	VMOVUPD Y5, 32(DI)(AX*8)
	MOVQ    BX, AX
	JMP     loop8

loop4:
	LEAQ    4(AX), BX
	CMPQ    BX, CX
	JGT     tail
	VMOVUPD (DI)(AX*8), Y4
	VMULPD  (R9)(AX*8), Y0, Y6
	VADDPD  Y6, Y4, Y4
	VMULPD  (R10)(AX*8), Y1, Y6
	VADDPD  Y6, Y4, Y4
	VMULPD  (R11)(AX*8), Y2, Y6
	VADDPD  Y6, Y4, Y4
	VMULPD  (R12)(AX*8), Y3, Y6
	VADDPD  Y6, Y4, Y4
	VMOVUPD Y4, (DI)(AX*8)
	MOVQ    BX, AX
	JMP     loop4

tail:
	CMPQ   AX, CX
	JGE    done
	VMOVSD (DI)(AX*8), X4
	VMULSD (R9)(AX*8), X0, X6
	VADDSD X6, X4, X4
	VMULSD (R10)(AX*8), X1, X6
	VADDSD X6, X4, X4
	VMULSD (R11)(AX*8), X2, X6
	VADDSD X6, X4, X4
	VMULSD (R12)(AX*8), X3, X6
	VADDSD X6, X4, X4
	VMOVSD X4, (DI)(AX*8)
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

// func axpy4x32AVX(s *[4]float32, x0, x1, x2, x3, y []float32)
TEXT ·axpy4x32AVX(SB), NOSPLIT, $0-128
	MOVQ         s+0(FP), R8
	VBROADCASTSS 0(R8), Y0
	VBROADCASTSS 4(R8), Y1
	VBROADCASTSS 8(R8), Y2
	VBROADCASTSS 12(R8), Y3
	MOVQ         x0_base+8(FP), R9
	MOVQ         x1_base+32(FP), R10
	MOVQ         x2_base+56(FP), R11
	MOVQ         x3_base+80(FP), R12
	MOVQ         y_base+104(FP), DI
	MOVQ         y_len+112(FP), CX
	XORQ         AX, AX

loop16:
	LEAQ    16(AX), BX
	CMPQ    BX, CX
	JGT     loop8
	VMOVUPS (DI)(AX*4), Y4
	VMOVUPS 32(DI)(AX*4), Y5
	VMULPS  (R9)(AX*4), Y0, Y6
	VMULPS  32(R9)(AX*4), Y0, Y7
	VADDPS  Y6, Y4, Y4
	VADDPS  Y7, Y5, Y5
	VMULPS  (R10)(AX*4), Y1, Y6
	VMULPS  32(R10)(AX*4), Y1, Y7
	VADDPS  Y6, Y4, Y4
	VADDPS  Y7, Y5, Y5
	VMULPS  (R11)(AX*4), Y2, Y6
	VMULPS  32(R11)(AX*4), Y2, Y7
	VADDPS  Y6, Y4, Y4
	VADDPS  Y7, Y5, Y5
	VMULPS  (R12)(AX*4), Y3, Y6
	VMULPS  32(R12)(AX*4), Y3, Y7
	VADDPS  Y6, Y4, Y4
	VADDPS  Y7, Y5, Y5
	VMOVUPS Y4, (DI)(AX*4)
	VMOVUPS Y5, 32(DI)(AX*4)
	MOVQ    BX, AX
	JMP     loop16

loop8:
	LEAQ    8(AX), BX
	CMPQ    BX, CX
	JGT     tail
	VMOVUPS (DI)(AX*4), Y4
	VMULPS  (R9)(AX*4), Y0, Y6
	VADDPS  Y6, Y4, Y4
	VMULPS  (R10)(AX*4), Y1, Y6
	VADDPS  Y6, Y4, Y4
	VMULPS  (R11)(AX*4), Y2, Y6
	VADDPS  Y6, Y4, Y4
	VMULPS  (R12)(AX*4), Y3, Y6
	VADDPS  Y6, Y4, Y4
	VMOVUPS Y4, (DI)(AX*4)
	MOVQ    BX, AX
	JMP     loop8

tail:
	CMPQ   AX, CX
	JGE    done
	VMOVSS (DI)(AX*4), X4
	VMULSS (R9)(AX*4), X0, X6
	VADDSS X6, X4, X4
	VMULSS (R10)(AX*4), X1, X6
	VADDSS X6, X4, X4
	VMULSS (R11)(AX*4), X2, X6
	VADDSS X6, X4, X4
	VMULSS (R12)(AX*4), X3, X6
	VADDSS X6, X4, X4
	VMOVSS X4, (DI)(AX*4)
	INCQ   AX
	JMP    tail

done:
	VZEROUPPER
	RET
