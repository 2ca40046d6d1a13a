//go:build !amd64

package kernels

// Elsewhere than amd64 there is no assembly: TestAxpyKernels and TestRowKernels
// check the dispatch alone.
func axpyKernels() (map[string]func(float64, []float64, []float64), map[string]func(float32, []float32, []float32)) {
	return map[string]func(float64, []float64, []float64){}, map[string]func(float32, []float32, []float32){}
}

func rowKernels() (map[string]func([]float64, NZ, []float64, int, []float64, bool), map[string]func([]float32, NZ, []float32, int, []float32, bool)) {
	return map[string]func([]float64, NZ, []float64, int, []float64, bool){}, map[string]func([]float32, NZ, []float32, int, []float32, bool){}
}
