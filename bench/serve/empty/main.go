// Command empty is the upper bound of the serving benchmark (bench/serve.sh):
// a net/http server whose POST /predict reads and discards the request body and
// answers a fixed small JSON object, so a run measures the HTTP stack, the
// loopback and the load generator, and nothing of a model. It is not part of
// mlship; it lives in the module so that `go build ./bench/serve/empty` works.
//
//	empty -addr 127.0.0.1:8081
//
// GET /readyz answers 200, as mlship-serve's does, so the driver waits for all
// servers the same way.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

// response has the shape of mlship-serve's single-row answer.
var response = []byte(`{"output":1,"probabilities":{"0":0.25,"1":0.75}}` + "\n")

func main() {
	addr := flag.String("addr", "127.0.0.1:8081", "listen address")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "empty: unexpected arguments %q\n", flag.Args())
		os.Exit(2)
	}

	mux := http.NewServeMux()
	mux.HandleFunc("POST /predict", func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			http.Error(w, "reading body", http.StatusBadRequest)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Content-Length", strconv.Itoa(len(response)))
		w.Write(response)
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n"))
	})

	srv := &http.Server{Addr: *addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	select {
	case err := <-errc:
		fmt.Fprintf(os.Stderr, "empty: %v\n", err)
		os.Exit(1)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintf(os.Stderr, "empty: shutdown: %v\n", err)
		os.Exit(1)
	}
}
