//go:build !amd64

package train

// axpy adds s*x[j] to y[j] for each j < min(len(x), len(y)), rounding the
// product before the addition (float64(...): no fused multiply-add on any
// architecture).
func axpy(s float64, x, y []float64) {
	if len(y) < len(x) {
		x = x[:len(y)]
	}
	y = y[:len(x)]
	j := 0
	for ; j+4 <= len(x); j += 4 {
		x4, y4 := x[j:j+4:j+4], y[j:j+4:j+4]
		y4[0] += float64(s * x4[0])
		y4[1] += float64(s * x4[1])
		y4[2] += float64(s * x4[2])
		y4[3] += float64(s * x4[3])
	}
	for ; j < len(x); j++ {
		y[j] += float64(s * x[j])
	}
}
