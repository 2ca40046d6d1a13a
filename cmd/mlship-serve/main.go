// Command mlship-serve serves a model directory written by `mlship train`:
// POST /predict, the Open Inference Protocol v2 under /v2, /healthz, /readyz and
// Prometheus metrics on /metrics. It is the program inside every mlship image.
//
// Flags may also be given as environment variables (MLSHIP_MODEL_DIR, PORT, ...);
// a flag on the command line wins.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mlship/mlship/internal/serve"
	"github.com/mlship/mlship/internal/version"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// options are the command's settings.
type options struct {
	addr            string
	modelDir        string
	name            string
	maxBody         int64
	maxInFlight     int
	bodyTimeout     time.Duration
	maxBodyReaders  int
	logFormat       string
	logLevel        string
	accessLog       bool
	drainDelay      time.Duration
	shutdownTimeout time.Duration
	showVersion     bool
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parse(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "mlship-serve: %v\n", err)
		return 2
	}
	if o.showVersion {
		fmt.Fprintln(stdout, version.Version)
		return 0
	}
	log, err := newLogger(stderr, o.logFormat, o.logLevel)
	if err != nil {
		fmt.Fprintf(stderr, "mlship-serve: %v\n", err)
		return 2
	}
	s, err := serve.New(serve.Config{
		ModelDir: o.modelDir, ModelName: o.name, MaxBodyBytes: o.maxBody, MaxInFlight: o.maxInFlight,
		BodyTimeout: o.bodyTimeout, MaxBodyReaders: o.maxBodyReaders, Logger: log, AccessLog: o.accessLog,
	})
	if err != nil {
		log.Error("cannot start", "error", err.Error())
		fmt.Fprintf(stderr, "mlship-serve: %v\n", err)
		return 2
	}
	err = serve.Run(ctx, s, serve.Lifecycle{Addr: o.addr, DrainDelay: o.drainDelay, ShutdownTimeout: o.shutdownTimeout})
	if err != nil {
		log.Error("stopped", "error", err.Error())
		return 1
	}
	return 0
}

// env returns the environment value of key, or def.
func env(key, def string) string {
	if v, ok := os.LookupEnv(key); ok && v != "" {
		return v
	}
	return def
}

func parse(args []string, stderr io.Writer) (*options, error) {
	fs := flag.NewFlagSet("mlship-serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &options{}
	defAddr := ":8080"
	if p := os.Getenv("PORT"); p != "" {
		defAddr = ":" + p
	}
	var envErr error
	envInt := func(key string, def int64) int64 {
		v := os.Getenv(key)
		if v == "" {
			return def
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil && envErr == nil {
			envErr = fmt.Errorf("$%s: %q is not an integer", key, v)
		}
		return n
	}
	envDur := func(key string, def time.Duration) time.Duration {
		v := os.Getenv(key)
		if v == "" {
			return def
		}
		d, err := time.ParseDuration(v)
		if err != nil && envErr == nil {
			envErr = fmt.Errorf("$%s: %q is not a duration", key, v)
		}
		return d
	}
	fs.StringVar(&o.addr, "addr", env("MLSHIP_ADDR", defAddr), "listen address ($MLSHIP_ADDR, or :$PORT)")
	fs.StringVar(&o.modelDir, "model", env("MLSHIP_MODEL_DIR", "/model"), "model directory written by mlship train ($MLSHIP_MODEL_DIR)")
	fs.StringVar(&o.name, "name", env("MLSHIP_MODEL_NAME", ""), "model name in /v2/models/NAME (default: the model card's name) ($MLSHIP_MODEL_NAME)")
	fs.Int64Var(&o.maxBody, "max-body-bytes", envInt("MLSHIP_MAX_BODY_BYTES", serve.DefaultMaxBodyBytes), "largest request body; larger ones get 413 ($MLSHIP_MAX_BODY_BYTES)")
	fs.IntVar(&o.maxInFlight, "max-inflight", int(envInt("MLSHIP_MAX_INFLIGHT", serve.DefaultMaxInFlight)), "prediction requests served at once; more get 429 ($MLSHIP_MAX_INFLIGHT)")
	fs.DurationVar(&o.bodyTimeout, "body-timeout", envDur("MLSHIP_BODY_TIMEOUT", serve.DefaultBodyTimeout), "a prediction request's body must arrive within this time; a slower one gets 408 ($MLSHIP_BODY_TIMEOUT)")
	fs.IntVar(&o.maxBodyReaders, "max-body-readers", int(envInt("MLSHIP_MAX_BODY_READERS", serve.DefaultMaxBodyReaders)), "prediction request bodies received at once; more get 429 ($MLSHIP_MAX_BODY_READERS)")
	fs.StringVar(&o.logFormat, "log-format", env("MLSHIP_LOG_FORMAT", "json"), "log format: json (one object a line) or text ($MLSHIP_LOG_FORMAT)")
	fs.StringVar(&o.logLevel, "log-level", env("MLSHIP_LOG_LEVEL", "info"), "log level: debug, info, warn, error ($MLSHIP_LOG_LEVEL)")
	fs.BoolVar(&o.accessLog, "access-log", env("MLSHIP_ACCESS_LOG", "") == "true", "log every request ($MLSHIP_ACCESS_LOG=true)")
	fs.DurationVar(&o.drainDelay, "drain-delay", envDur("MLSHIP_DRAIN_DELAY", 5*time.Second), "after SIGTERM, keep serving this long while not ready, so load balancers stop sending traffic ($MLSHIP_DRAIN_DELAY)")
	fs.DurationVar(&o.shutdownTimeout, "shutdown-timeout", envDur("MLSHIP_SHUTDOWN_TIMEOUT", 30*time.Second), "then wait this long for in-flight requests ($MLSHIP_SHUTDOWN_TIMEOUT)")
	fs.BoolVar(&o.showVersion, "version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if envErr != nil {
		return nil, envErr
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.drainDelay < 0 || o.shutdownTimeout < 0 {
		return nil, errors.New("durations must not be negative")
	}
	if o.bodyTimeout <= 0 {
		return nil, fmt.Errorf("--body-timeout must be positive, got %s", o.bodyTimeout)
	}
	if o.maxBodyReaders < 1 {
		return nil, fmt.Errorf("--max-body-readers must be at least 1, got %d", o.maxBodyReaders)
	}
	return o, nil
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("log format %q: want json or text", format)
}
