package serve

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestShutdownLosesNoRequest sends traffic through a shutdown the way a Kubernetes
// rolling update does: clients keep sending until the readiness probe fails (the
// endpoints controller then stops routing to the pod), and a slow request that
// is in flight when the listener closes must still be answered. No request may fail.
func TestShutdownLosesNoRequest(t *testing.T) {
	cfg := Config{ModelDir: writeModel(t, "binary")}
	s, err := New(cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, s, Lifecycle{Addr: "127.0.0.1:0", DrainDelay: 300 * time.Millisecond, ShutdownTimeout: 10 * time.Second,
			OnListen: func(a net.Addr) { addrc <- a }})
	}()
	base := "http://" + (<-addrc).String()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}

	var routing atomic.Bool
	routing.Store(true)
	go func() { // the "endpoints controller": probes readiness every 20ms
		for routing.Load() {
			res, err := client.Get(base + "/readyz")
			if err == nil {
				res.Body.Close()
				if res.StatusCode == http.StatusServiceUnavailable {
					routing.Store(false)
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()

	var ok, failed atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for routing.Load() {
				res, err := client.Post(base+"/predict", "application/json", bytes.NewBufferString(`{"input":[1,2,3]}`))
				if err != nil {
					failed.Add(1)
					continue
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode == 200 {
					ok.Add(1)
				} else {
					failed.Add(1)
				}
			}
		}()
	}

	// A slow request: its body arrives in two parts, the second after the listener closed.
	pr, pw := io.Pipe()
	slow := make(chan int, 1)
	go func() {
		res, err := client.Post(base+"/predict", "application/json", pr)
		if err != nil {
			slow <- -1
			return
		}
		res.Body.Close()
		slow <- res.StatusCode
	}()
	_, err = pw.Write([]byte(`{"input":[1,`))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return s.readers.Load() >= 1 }, 5*time.Second, time.Millisecond)

	time.Sleep(200 * time.Millisecond) // traffic flows
	cancel()                           // SIGTERM
	wg.Wait()                          // clients stop once readiness fails
	time.Sleep(400 * time.Millisecond) // past the drain delay: the listener is closed now
	_, err = net.DialTimeout("tcp", base[len("http://"):], time.Second)
	assert.Error(t, err, "the listener should be closed after the drain delay")
	pw.Write([]byte(`2,3]}`))
	pw.Close()

	assert.Equal(t, 200, <-slow, "the in-flight request must be answered")
	require.NoError(t, <-done)
	assert.Zero(t, failed.Load(), "requests failed during the shutdown")
	assert.Greater(t, ok.Load(), int64(50), "too little traffic to prove anything")
	t.Logf("%d requests answered through the shutdown, none failed", ok.Load())
}
