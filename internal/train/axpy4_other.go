//go:build !amd64

package train

// axpy4 adds s[0]*x0[j], then s[1]*x1[j], s[2]*x2[j] and s[3]*x3[j] to y[j], for
// each j < len(y) (every x at least as long), each product rounded before it is
// added (float64(...): no fused multiply-add on any architecture): the same
// operations as four axpy calls.
func axpy4(s *[4]float64, x0, x1, x2, x3, y []float64) {
	n := len(y)
	x0, x1, x2, x3 = x0[:n], x1[:n], x2[:n], x3[:n]
	for j := range y {
		v := y[j]
		v += float64(s[0] * x0[j])
		v += float64(s[1] * x1[j])
		v += float64(s[2] * x2[j])
		v += float64(s[3] * x3[j])
		y[j] = v
	}
}
