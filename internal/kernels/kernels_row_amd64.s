#include "textflag.h"

// func rowAVX(a []float64, nz []int, b []float64, ldb int, c []float64, zero bool)
//
// For each j < len(c), in chunks held in registers:
//	for each l in nz, in order: c[j] = c[j] + a[l]*b[l*ldb+j]
// each product rounded, then each sum (VMULPD then VADDPD, no FMA): the same
// operations, in the same order, as axpyGo(a[l], b[l*ldb:], c) for each l in
// nz, which is what rowGo does; with zero set, c starts from +0 instead of its
// values (without reading them: the same as clearing c first). The caller checks
// the bounds.
//
// Registers: SI a, R8 nz, R9 len(nz), R10 b, R11 ldb*8, DI c, CX len(c),
// AX j, DX the index into nz, R12 &b[j], R13 &b[l*ldb+j], Y8 a[l] broadcast.
TEXT ·rowAVX(SB), NOSPLIT, $0-105
	MOVQ a_base+0(FP), SI
	MOVQ nz_base+24(FP), R8
	MOVQ nz_len+32(FP), R9
	MOVQ b_base+48(FP), R10
	MOVQ ldb+72(FP), R11
	SHLQ $3, R11
	MOVQ c_base+80(FP), DI
	MOVQ c_len+88(FP), CX
	MOVBQZX zero+104(FP), R14
	XORQ AX, AX

chunk32:
	LEAQ    32(AX), BX
	CMPQ    BX, CX
	JGT     chunk16
	TESTQ R14, R14
	JNZ   zero0
	VMOVUPD (DI)(AX*8), Y0
	VMOVUPD 32(DI)(AX*8), Y1
	VMOVUPD 64(DI)(AX*8), Y2
	VMOVUPD 96(DI)(AX*8), Y3
	VMOVUPD 128(DI)(AX*8), Y4
	VMOVUPD 160(DI)(AX*8), Y5
	VMOVUPD 192(DI)(AX*8), Y6
	VMOVUPD 224(DI)(AX*8), Y7
	JMP   loaded0

zero0:
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7

loaded0:
	LEAQ    (R10)(AX*8), R12
	XORQ    DX, DX

loop32:
	CMPQ         DX, R9
	JGE          store32
	MOVQ         (R8)(DX*8), R13
	VBROADCASTSD (SI)(R13*8), Y8
	IMULQ        R11, R13
	ADDQ         R12, R13
	VMULPD       (R13), Y8, Y9
	VADDPD       Y9, Y0, Y0
	VMULPD       32(R13), Y8, Y10
	VADDPD       Y10, Y1, Y1
	VMULPD       64(R13), Y8, Y11
	VADDPD       Y11, Y2, Y2
	VMULPD       96(R13), Y8, Y12
	VADDPD       Y12, Y3, Y3
	VMULPD       128(R13), Y8, Y9
	VADDPD       Y9, Y4, Y4
	VMULPD       160(R13), Y8, Y10
	VADDPD       Y10, Y5, Y5
	VMULPD       192(R13), Y8, Y11
	VADDPD       Y11, Y6, Y6
	VMULPD       224(R13), Y8, Y12
	VADDPD       Y12, Y7, Y7
	INCQ         DX
	JMP          loop32

store32:
	VMOVUPD Y0, (DI)(AX*8)
	VMOVUPD Y1, 32(DI)(AX*8)
	VMOVUPD Y2, 64(DI)(AX*8)
	VMOVUPD Y3, 96(DI)(AX*8)
	VMOVUPD Y4, 128(DI)(AX*8)
	VMOVUPD Y5, 160(DI)(AX*8)
	VMOVUPD Y6, 192(DI)(AX*8)
	VMOVUPD Y7, 224(DI)(AX*8)
	MOVQ    BX, AX
	JMP     chunk32

chunk16:
	LEAQ    16(AX), BX
	CMPQ    BX, CX
	JGT     chunk4
	TESTQ R14, R14
	JNZ   zero1
	VMOVUPD (DI)(AX*8), Y0
	VMOVUPD 32(DI)(AX*8), Y1
	VMOVUPD 64(DI)(AX*8), Y2
	VMOVUPD 96(DI)(AX*8), Y3
	JMP   loaded1

zero1:
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3

loaded1:
	LEAQ    (R10)(AX*8), R12
	XORQ    DX, DX

loop16:
	CMPQ         DX, R9
	JGE          store16
	MOVQ         (R8)(DX*8), R13
	VBROADCASTSD (SI)(R13*8), Y8
	IMULQ        R11, R13
	ADDQ         R12, R13
	VMULPD       (R13), Y8, Y9
	VADDPD       Y9, Y0, Y0
	VMULPD       32(R13), Y8, Y10
	VADDPD       Y10, Y1, Y1
	VMULPD       64(R13), Y8, Y11
	VADDPD       Y11, Y2, Y2
	VMULPD       96(R13), Y8, Y12
	VADDPD       Y12, Y3, Y3
	INCQ         DX
	JMP          loop16

store16:
	VMOVUPD Y0, (DI)(AX*8)
	VMOVUPD Y1, 32(DI)(AX*8)
	VMOVUPD Y2, 64(DI)(AX*8)
	VMOVUPD Y3, 96(DI)(AX*8)
	MOVQ    BX, AX
	JMP     chunk16

chunk4:
	LEAQ    4(AX), BX
	CMPQ    BX, CX
	JGT     tail
	TESTQ R14, R14
	JNZ   zero2
	VMOVUPD (DI)(AX*8), Y0
	JMP   loaded2

zero2:
	VXORPS Y0, Y0, Y0

loaded2:
	LEAQ    (R10)(AX*8), R12
	XORQ    DX, DX

loop4:
	CMPQ         DX, R9
	JGE          store4
	MOVQ         (R8)(DX*8), R13
	VBROADCASTSD (SI)(R13*8), Y8
	IMULQ        R11, R13
	ADDQ         R12, R13
	VMULPD       (R13), Y8, Y9
	VADDPD       Y9, Y0, Y0
	INCQ         DX
	JMP          loop4

store4:
	VMOVUPD Y0, (DI)(AX*8)
	MOVQ    BX, AX
	JMP     chunk4

tail:
	CMPQ   AX, CX
	JGE    done
	TESTQ R14, R14
	JNZ   zero3
	VMOVSD (DI)(AX*8), X0
	JMP   loaded3

zero3:
	VXORPS X0, X0, X0

loaded3:
	LEAQ   (R10)(AX*8), R12
	XORQ   DX, DX

loop1:
	CMPQ   DX, R9
	JGE    store1
	MOVQ   (R8)(DX*8), R13
	VMOVSD (SI)(R13*8), X8
	IMULQ  R11, R13
	ADDQ   R12, R13
	VMULSD (R13), X8, X9
	VADDSD X9, X0, X0
	INCQ   DX
	JMP    loop1

store1:
	VMOVSD X0, (DI)(AX*8)
	INCQ   AX
	JMP    tail

done:
	VZEROUPPER
	RET

// func row32AVX(a []float32, nz []int, b []float32, ldb int, c []float32, zero bool)
//
// rowAVX for float32: eight elements a register (VMULPS then VADDPS).
TEXT ·row32AVX(SB), NOSPLIT, $0-105
	MOVQ a_base+0(FP), SI
	MOVQ nz_base+24(FP), R8
	MOVQ nz_len+32(FP), R9
	MOVQ b_base+48(FP), R10
	MOVQ ldb+72(FP), R11
	SHLQ $2, R11
	MOVQ c_base+80(FP), DI
	MOVQ c_len+88(FP), CX
	MOVBQZX zero+104(FP), R14
	XORQ AX, AX

chunk64:
	LEAQ    64(AX), BX
	CMPQ    BX, CX
	JGT     chunk32
	TESTQ R14, R14
	JNZ   zero4
	VMOVUPS (DI)(AX*4), Y0
	VMOVUPS 32(DI)(AX*4), Y1
	VMOVUPS 64(DI)(AX*4), Y2
	VMOVUPS 96(DI)(AX*4), Y3
	VMOVUPS 128(DI)(AX*4), Y4
	VMOVUPS 160(DI)(AX*4), Y5
	VMOVUPS 192(DI)(AX*4), Y6
	VMOVUPS 224(DI)(AX*4), Y7
	JMP   loaded4

zero4:
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7

loaded4:
	LEAQ    (R10)(AX*4), R12
	XORQ    DX, DX

loop64:
	CMPQ         DX, R9
	JGE          store64
	MOVQ         (R8)(DX*8), R13
	VBROADCASTSS (SI)(R13*4), Y8
	IMULQ        R11, R13
	ADDQ         R12, R13
	VMULPS       (R13), Y8, Y9
	VADDPS       Y9, Y0, Y0
	VMULPS       32(R13), Y8, Y10
	VADDPS       Y10, Y1, Y1
	VMULPS       64(R13), Y8, Y11
	VADDPS       Y11, Y2, Y2
	VMULPS       96(R13), Y8, Y12
	VADDPS       Y12, Y3, Y3
	VMULPS       128(R13), Y8, Y9
	VADDPS       Y9, Y4, Y4
	VMULPS       160(R13), Y8, Y10
	VADDPS       Y10, Y5, Y5
	VMULPS       192(R13), Y8, Y11
	VADDPS       Y11, Y6, Y6
	VMULPS       224(R13), Y8, Y12
	VADDPS       Y12, Y7, Y7
	INCQ         DX
	JMP          loop64

store64:
	VMOVUPS Y0, (DI)(AX*4)
	VMOVUPS Y1, 32(DI)(AX*4)
	VMOVUPS Y2, 64(DI)(AX*4)
	VMOVUPS Y3, 96(DI)(AX*4)
	VMOVUPS Y4, 128(DI)(AX*4)
	VMOVUPS Y5, 160(DI)(AX*4)
	VMOVUPS Y6, 192(DI)(AX*4)
	VMOVUPS Y7, 224(DI)(AX*4)
	MOVQ    BX, AX
	JMP     chunk64

chunk32:
	LEAQ    32(AX), BX
	CMPQ    BX, CX
	JGT     chunk8
	TESTQ R14, R14
	JNZ   zero5
	VMOVUPS (DI)(AX*4), Y0
	VMOVUPS 32(DI)(AX*4), Y1
	VMOVUPS 64(DI)(AX*4), Y2
	VMOVUPS 96(DI)(AX*4), Y3
	JMP   loaded5

zero5:
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3

loaded5:
	LEAQ    (R10)(AX*4), R12
	XORQ    DX, DX

loop32:
	CMPQ         DX, R9
	JGE          store32
	MOVQ         (R8)(DX*8), R13
	VBROADCASTSS (SI)(R13*4), Y8
	IMULQ        R11, R13
	ADDQ         R12, R13
	VMULPS       (R13), Y8, Y9
	VADDPS       Y9, Y0, Y0
	VMULPS       32(R13), Y8, Y10
	VADDPS       Y10, Y1, Y1
	VMULPS       64(R13), Y8, Y11
	VADDPS       Y11, Y2, Y2
	VMULPS       96(R13), Y8, Y12
	VADDPS       Y12, Y3, Y3
	INCQ         DX
	JMP          loop32

store32:
	VMOVUPS Y0, (DI)(AX*4)
	VMOVUPS Y1, 32(DI)(AX*4)
	VMOVUPS Y2, 64(DI)(AX*4)
	VMOVUPS Y3, 96(DI)(AX*4)
	MOVQ    BX, AX
	JMP     chunk32

chunk8:
	LEAQ    8(AX), BX
	CMPQ    BX, CX
	JGT     tail
	TESTQ R14, R14
	JNZ   zero6
	VMOVUPS (DI)(AX*4), Y0
	JMP   loaded6

zero6:
	VXORPS Y0, Y0, Y0

loaded6:
	LEAQ    (R10)(AX*4), R12
	XORQ    DX, DX

loop8:
	CMPQ         DX, R9
	JGE          store8
	MOVQ         (R8)(DX*8), R13
	VBROADCASTSS (SI)(R13*4), Y8
	IMULQ        R11, R13
	ADDQ         R12, R13
	VMULPS       (R13), Y8, Y9
	VADDPS       Y9, Y0, Y0
	INCQ         DX
	JMP          loop8

store8:
	VMOVUPS Y0, (DI)(AX*4)
	MOVQ    BX, AX
	JMP     chunk8

tail:
	CMPQ   AX, CX
	JGE    done
	TESTQ R14, R14
	JNZ   zero7
	VMOVSS (DI)(AX*4), X0
	JMP   loaded7

zero7:
	VXORPS X0, X0, X0

loaded7:
	LEAQ   (R10)(AX*4), R12
	XORQ   DX, DX

loop1:
	CMPQ   DX, R9
	JGE    store1
	MOVQ   (R8)(DX*8), R13
	VMOVSS (SI)(R13*4), X8
	IMULQ  R11, R13
	ADDQ   R12, R13
	VMULSS (R13), X8, X9
	VADDSS X9, X0, X0
	INCQ   DX
	JMP    loop1

store1:
	VMOVSS X0, (DI)(AX*4)
	INCQ   AX
	JMP    tail

done:
	VZEROUPPER
	RET
