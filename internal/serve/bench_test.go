package serve

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkPredictHandler measures the handler alone (decode, preprocess, forward,
// metrics, encode) without the network, for one row and a batch of 256.
func BenchmarkPredictHandler(b *testing.B) {
	s, err := New(Config{ModelDir: writeModel(b, "binary")})
	if err != nil {
		b.Fatal(err)
	}
	h := s.Handler()
	batch := bytes.NewBufferString(`{"inputs":[`)
	for i := 0; i < 256; i++ {
		if i > 0 {
			batch.WriteByte(',')
		}
		batch.WriteString(`[1.5,2,3.25]`)
	}
	batch.WriteString(`]}`)
	for _, tc := range []struct {
		name string
		body []byte
		rows int
	}{{"row", []byte(`{"input":[1.5,2,3.25]}`), 1}, {"batch256", batch.Bytes(), 256}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				w := httptest.NewRecorder()
				for pb.Next() {
					w.Body.Reset()
					r := httptest.NewRequest(http.MethodPost, "/predict", bytes.NewReader(tc.body))
					h.ServeHTTP(w, r)
					if w.Code != 200 {
						b.Fatalf("status %d: %s", w.Code, w.Body)
					}
				}
			})
			b.ReportMetric(float64(tc.rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
