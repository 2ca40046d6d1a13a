package serve

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// Lifecycle configures Run.
type Lifecycle struct {
	// Addr is the listen address, e.g. ":8080" or "127.0.0.1:0".
	Addr string
	// DrainDelay is how long the server keeps serving after ctx is done while its
	// readiness probes fail, so load balancers (a Kubernetes Service's endpoints)
	// stop sending it traffic before it closes its listener.
	DrainDelay time.Duration
	// ShutdownTimeout bounds the wait for in-flight requests after the listener closes.
	ShutdownTimeout time.Duration
	// OnListen, when set, is called with the bound address once the server listens.
	OnListen func(addr net.Addr)
}

// Run serves s until ctx is done (SIGTERM in mlship-serve), then drains: marks the
// server not ready, keeps serving for DrainDelay, stops accepting connections and
// waits up to ShutdownTimeout for in-flight requests to finish.
func Run(ctx context.Context, s *Server, lc Lifecycle) error {
	ln, err := net.Listen("tcp", lc.Addr)
	if err != nil {
		return fmt.Errorf("listening on %q: %w", lc.Addr, err)
	}
	// Headers get 10 s; a prediction body gets its own deadline (Config.BodyTimeout,
	// set by the handler); ReadTimeout bounds a body nobody reads (a 405's), and
	// the response must be written within a minute of the body's deadline.
	const headerTimeout = 10 * time.Second
	hs := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: headerTimeout,
		ReadTimeout:       headerTimeout + s.cfg.BodyTimeout,
		WriteTimeout:      s.cfg.BodyTimeout + 60*time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          nil,
	}
	s.log.Info("serving", "addr", ln.Addr().String(), "model", s.name, "version", s.version,
		"task", s.model.Card.Task, "features", len(s.model.Card.Features))
	if lc.OnListen != nil {
		lc.OnListen(ln.Addr())
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	s.Drain()
	s.log.Info("draining", "delay_seconds", lc.DrainDelay.Seconds())
	select {
	case <-time.After(lc.DrainDelay):
	case err := <-errc:
		return fmt.Errorf("serving: %w", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), lc.ShutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		hs.Close()
		return fmt.Errorf("shutting down: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serving: %w", err)
	}
	s.log.Info("stopped")
	return nil
}
