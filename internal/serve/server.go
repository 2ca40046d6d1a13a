// Package serve is the model server's HTTP side: /predict, the Open Inference
// Protocol v2 (KServe's), health and readiness, and Prometheus metrics. It loads a
// model directory written by mlship train and predicts with the pure-Go
// predictor. It must stay small: cmd/mlship-serve's dependency test keeps
// gorgonia, client-go, go-containerregistry's remote and cobra out of it.
package serve

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mlship/mlship/internal/category"
	"github.com/mlship/mlship/internal/model"
	"github.com/mlship/mlship/internal/serve/wire"
)

// Config configures a Server.
type Config struct {
	// ModelDir is the model directory to serve.
	ModelDir string
	// ModelName is the name in the Open Inference Protocol paths (default: the
	// model card's name).
	ModelName string
	// MaxBodyBytes bounds a request body; larger ones get 413 (default 1 MiB).
	MaxBodyBytes int64
	// MaxInFlight bounds the prediction requests served at once; past it the
	// server answers 429 at once (default 256). A request takes a slot only once
	// its body has been read, so slow clients cannot hold the slots.
	MaxInFlight int
	// BodyTimeout bounds the reading of a prediction request's body, from when
	// the handler starts reading it to its last byte; a slower body gets 408 and
	// its connection is closed (default 10s).
	BodyTimeout time.Duration
	// MaxBodyReaders bounds the prediction request bodies being received at once
	// (one per connection); past it the server answers 429 at once (default 1024).
	MaxBodyReaders int
	// Logger receives startup, error and (with AccessLog) request lines.
	Logger *slog.Logger
	// AccessLog logs every request.
	AccessLog bool
	// Registry receives the server's metrics (default: a new registry).
	Registry *prometheus.Registry
}

// Defaults.
const (
	DefaultMaxBodyBytes   = 1 << 20
	DefaultMaxInFlight    = 256
	DefaultBodyTimeout    = 10 * time.Second
	DefaultMaxBodyReaders = 1024
)

// Validate checks the configuration.
func (c Config) Validate() error {
	if c.ModelDir == "" {
		return errors.New("no model directory")
	}
	if c.MaxBodyBytes < 0 {
		return fmt.Errorf("max body size must not be negative, got %d", c.MaxBodyBytes)
	}
	if c.MaxInFlight < 0 {
		return fmt.Errorf("max in-flight requests must not be negative, got %d", c.MaxInFlight)
	}
	if c.BodyTimeout < 0 {
		return fmt.Errorf("body timeout must not be negative, got %s", c.BodyTimeout)
	}
	if c.MaxBodyReaders < 0 {
		return fmt.Errorf("max body readers must not be negative, got %d", c.MaxBodyReaders)
	}
	return nil
}

// Route names, used as the "route" label of the metrics.
const (
	routePredict   = "predict"
	routeInfer     = "v2_infer"
	routeModelMeta = "v2_model_metadata"
	routeModelRdy  = "v2_model_ready"
	routeServer    = "v2_server_metadata"
	routeLive      = "v2_health_live"
	routeReady     = "v2_health_ready"
	routeHealthz   = "healthz"
	routeReadyz    = "readyz"
	routeMetrics   = "metrics"
	routeNotFound  = "not_found"
)

var routes = []string{routePredict, routeInfer, routeModelMeta, routeModelRdy, routeServer, routeLive,
	routeReady, routeHealthz, routeReadyz, routeMetrics, routeNotFound}

// Server answers predictions for one model.
type Server struct {
	cfg        Config
	model      *model.Model
	schema     *wire.Schema
	name       string
	version    string // model version: the first 12 hex digits of the weights' sha256
	metrics    *Metrics
	reg        *prometheus.Registry
	log        *slog.Logger
	ready      atomic.Bool
	inflight   atomic.Int64 // prediction requests holding a slot
	readers    atomic.Int64 // prediction request bodies being read
	labels     [][]byte     // JSON token of each class label
	probKeys   [][]byte     // `"label":` of each class
	intClass   bool         // every class label is an integer
	classValue []float64    // each class label as a number; nil when one is not a number
	pool       sync.Pool
	handler    http.Handler
	// admitted, when set (by tests), runs after a request took its in-flight slot.
	admitted func()
}

// work holds the per-request buffers, pooled.
type work struct {
	shard   int  // of the sharded histograms
	slot    bool // holds an in-flight slot
	body    bytes.Buffer
	req     wire.PredictRequest
	scratch *model.Scratch
	out     []byte
	probs   []float64
	classes []int
	values  []float64
	z       []float64 // standardised numeric inputs, rows x numeric features
}

// New loads the model and builds the server; it is ready at once.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.MaxInFlight == 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	if cfg.BodyTimeout == 0 {
		cfg.BodyTimeout = DefaultBodyTimeout
	}
	if cfg.MaxBodyReaders == 0 {
		cfg.MaxBodyReaders = DefaultMaxBodyReaders
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	m, err := model.Load(cfg.ModelDir)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, model: m, schema: newSchema(m), name: cfg.ModelName, reg: cfg.Registry, log: cfg.Logger}
	if s.name == "" {
		s.name = m.Card.Name
	}
	if s.name == "" {
		s.name = "model"
	}
	s.version = m.Card.Weights.SHA256
	if len(s.version) > 12 {
		s.version = s.version[:12]
	}
	s.intClass = true
	numeric := true
	for _, l := range m.Card.Classes {
		tok := []byte(l)
		f, err := strconv.ParseFloat(l, 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) || !wire.IsJSONNumber(l) {
			tok = appendJSONString(nil, l)
			s.intClass, numeric = false, false
		} else if f != math.Trunc(f) {
			s.intClass = false
		}
		s.classValue = append(s.classValue, f)
		s.labels = append(s.labels, tok)
		s.probKeys = append(s.probKeys, append(appendJSONString(nil, l), ':'))
	}
	if !numeric {
		s.classValue = nil
	}
	s.metrics = NewMetrics(cfg.Registry, m, s.version)
	s.pool.New = func() any { return &work{scratch: m.NewScratch(), shard: s.metrics.drift.shard()} }
	s.handler = s.routes()
	s.ready.Store(true)
	s.metrics.ready.Set(1)
	return s, nil
}

// Handler is the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.handler }

// Model is the model being served.
func (s *Server) Model() *model.Model { return s.model }

// Drain marks the server not ready (readiness probes fail) while it keeps serving,
// so that load balancers stop sending traffic before it shuts down.
func (s *Server) Drain() {
	s.ready.Store(false)
	s.metrics.ready.Set(0)
}

// Ready reports whether the server takes traffic.
func (s *Server) Ready() bool { return s.ready.Load() }

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	handle := func(pattern, route string, methods string, fn func(w http.ResponseWriter, r *http.Request, wk *work) int) {
		mux.Handle(pattern, s.instrument(route, methods, fn))
	}
	handle("/predict", routePredict, "POST", s.predict)
	handle("/v2/models/{name}/infer", routeInfer, "POST", s.infer)
	handle("/v2/models/{name}/versions/{version}/infer", routeInfer, "POST", s.infer)
	handle("/v2/models/{name}", routeModelMeta, "GET", s.modelMetadata)
	handle("/v2/models/{name}/versions/{version}", routeModelMeta, "GET", s.modelMetadata)
	handle("/v2/models/{name}/ready", routeModelRdy, "GET", s.modelReady)
	handle("/v2/models/{name}/versions/{version}/ready", routeModelRdy, "GET", s.modelReady)
	handle("/v2", routeServer, "GET", s.serverMetadata)
	handle("/v2/{$}", routeServer, "GET", s.serverMetadata)
	handle("/v2/health/live", routeLive, "GET", s.live)
	handle("/v2/health/ready", routeReady, "GET", s.readyz)
	handle("/healthz", routeHealthz, "GET", s.live)
	handle("/readyz", routeReadyz, "GET", s.readyz)
	prom := promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelError)})
	handle("/metrics", routeMetrics, "GET", func(w http.ResponseWriter, r *http.Request, _ *work) int {
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		prom.ServeHTTP(rec, r)
		return rec.code
	})
	handle("/", routeNotFound, "", func(w http.ResponseWriter, r *http.Request, wk *work) int {
		return s.fail(w, wk, http.StatusNotFound, "no route %s %s: see /predict, /v2/models/%s/infer, /healthz, /readyz, /metrics", wire.Clip(r.Method), wire.Clip(r.URL.Path), s.name)
	})
	return mux
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.code = code
	r.ResponseWriter.WriteHeader(code)
}

// instrument wraps a handler with the method check, a pooled work buffer,
// metrics and the access log. fn returns the status it wrote.
func (s *Server) instrument(route, methods string, fn func(http.ResponseWriter, *http.Request, *work) int) http.Handler {
	allowed := strings.Split(methods, ",")
	if methods == "GET" {
		allowed = append(allowed, "HEAD")
	}
	allow := strings.Join(allowed, ", ")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		wk := s.pool.Get().(*work)
		code := s.serve(w, r, wk, route, methods, allowed, allow, fn)
		if cap(wk.out) <= 1<<20 && wk.body.Cap() <= 4<<20 && cap(wk.z) <= 1<<20 {
			s.pool.Put(wk)
		}
		d := time.Since(start)
		s.metrics.record(route, code, d.Seconds())
		if s.cfg.AccessLog {
			s.log.Info("request", "method", r.Method, "path", r.URL.Path, "route", route, "code", code, "seconds", d.Seconds(), "remote", r.RemoteAddr)
		}
	})
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request, wk *work, route, methods string, allowed []string, allow string, fn func(http.ResponseWriter, *http.Request, *work) int) (code int) {
	defer func() {
		s.release(wk) // a handler that panicked, or returned early, still holds its slot
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			s.log.Error("panic serving request", "route", route, "panic", fmt.Sprint(p))
			code = s.fail(w, wk, http.StatusInternalServerError, "internal error")
		}
	}()
	if methods != "" {
		ok := false
		for _, m := range allowed {
			if r.Method == m {
				ok = true
				break
			}
		}
		if !ok {
			w.Header().Set("Allow", allow)
			return s.fail(w, wk, http.StatusMethodNotAllowed, "method %s not allowed on %s (allowed: %s)", wire.Clip(r.Method), wire.Clip(r.URL.Path), allow)
		}
	}
	return fn(w, r, wk)
}

// admit reads a prediction request's body (readBody) and then takes an in-flight
// slot, so that a slot is held only while the server works, never while a client
// sends. On failure it has answered and returns the status; the slot is released
// by release (which serve also calls when the handler returns).
func (s *Server) admit(w http.ResponseWriter, r *http.Request, wk *work) ([]byte, int) {
	body, code, err := s.readBody(w, r, wk)
	if err != nil {
		return nil, s.fail(w, wk, code, "%v", err)
	}
	if s.inflight.Add(1) > int64(s.cfg.MaxInFlight) {
		s.inflight.Add(-1)
		w.Header().Set("Retry-After", "1")
		return nil, s.fail(w, wk, http.StatusTooManyRequests, "too many requests in flight (limit %d); retry later", s.cfg.MaxInFlight)
	}
	wk.slot = true
	s.metrics.inflight.Inc()
	if s.admitted != nil {
		s.admitted()
	}
	return body, 0
}

// release gives back wk's in-flight slot, if it holds one.
func (s *Server) release(wk *work) {
	if wk.slot {
		wk.slot = false
		s.inflight.Add(-1)
		s.metrics.inflight.Dec()
	}
}

// setReadDeadline sets the connection's read deadline the way
// http.ResponseController does (net/http's ResponseWriter has the method; a
// wrapper unwraps to it), without its allocations, and does nothing for a
// writer without one (httptest.ResponseRecorder).
func setReadDeadline(w http.ResponseWriter, t time.Time) {
	for {
		switch x := w.(type) {
		case interface{ SetReadDeadline(time.Time) error }:
			x.SetReadDeadline(t)
			return
		case interface{ Unwrap() http.ResponseWriter }:
			w = x.Unwrap()
		default:
			return
		}
	}
}

// readBody reads the request body into wk.body, enforcing the size limit, the
// bound on bodies read at once and the body deadline.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, wk *work) ([]byte, int, error) {
	limit := s.cfg.MaxBodyBytes
	if r.ContentLength > limit {
		dropBody(w)
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("request body of %d bytes is over the limit of %d bytes", r.ContentLength, limit)
	}
	if s.readers.Add(1) > int64(s.cfg.MaxBodyReaders) {
		s.readers.Add(-1)
		dropBody(w)
		w.Header().Set("Retry-After", "1")
		return nil, http.StatusTooManyRequests, fmt.Errorf("too many request bodies being received at once (limit %d); retry later", s.cfg.MaxBodyReaders)
	}
	s.metrics.bodies.Inc()
	defer func() {
		s.readers.Add(-1)
		s.metrics.bodies.Dec()
	}()
	setReadDeadline(w, time.Now().Add(s.cfg.BodyTimeout))
	wk.body.Reset()
	if r.ContentLength > 0 {
		// Not the whole declared length at once: a client that declares 1 MiB
		// and sends nothing must not cost 1 MiB.
		wk.body.Grow(int(min(r.ContentLength, 64<<10)))
	}
	_, err := wk.body.ReadFrom(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		dropBody(w)
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("request body is over the limit of %d bytes", limit)
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, http.StatusRequestTimeout, fmt.Errorf("request body not received within %s (%d bytes arrived); send the body at once", s.cfg.BodyTimeout, wk.body.Len())
		}
		return nil, http.StatusBadRequest, fmt.Errorf("reading the request body: %v", err)
	}
	setReadDeadline(w, time.Time{}) // the body is read: no deadline while the server works
	return wk.body.Bytes(), 0, nil
}

// dropBody makes the server close the connection after the answer without
// reading what is left of the request body: net/http would otherwise read up to
// 256 KiB of it first, for as long as the client cares to trickle it.
func dropBody(w http.ResponseWriter) {
	w.Header().Set("Connection", "close")
	setReadDeadline(w, time.Now())
}

// jsonContentType is shared by every response (net/http only reads it), which
// saves an allocation per request over Header().Set.
var jsonContentType = []string{"application/json"}

// writeJSON sends body (a JSON document) with status code. net/http adds the
// Content-Length itself for a body written in one piece.
func writeJSON(w http.ResponseWriter, code int, body []byte) int {
	w.Header()["Content-Type"] = jsonContentType
	w.WriteHeader(code)
	w.Write(body)
	return code
}

// maxErrorBytes bounds an error message: the decoders quote only a short prefix
// of what a client sent, and this is the backstop should one still be long.
const maxErrorBytes = 2048

// fail answers {"error": "..."} with status code.
func (s *Server) fail(w http.ResponseWriter, wk *work, code int, format string, a ...any) int {
	msg := fmt.Sprintf(format, a...)
	if len(msg) > maxErrorBytes {
		msg = wire.ClipTo(msg, maxErrorBytes)
	}
	b := append(wk.out[:0], `{"error":`...)
	b = appendJSONString(b, msg)
	b = append(b, "}\n"...)
	wk.out = b
	if code >= 500 {
		s.log.Error("request failed", "code", code, "error", msg)
	}
	return writeJSON(w, code, b)
}

func (s *Server) live(w http.ResponseWriter, _ *http.Request, _ *work) int {
	return writeJSON(w, http.StatusOK, []byte(`{"live":true}`+"\n"))
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request, _ *work) int {
	if !s.ready.Load() {
		return writeJSON(w, http.StatusServiceUnavailable, []byte(`{"ready":false,"reason":"draining"}`+"\n"))
	}
	return writeJSON(w, http.StatusOK, []byte(`{"ready":true}`+"\n"))
}

// predict answers POST /predict.
func (s *Server) predict(w http.ResponseWriter, r *http.Request, wk *work) int {
	body, code := s.admit(w, r, wk)
	if code != 0 {
		return code
	}
	if err := s.schema.DecodePredict(body, &wk.req); err != nil {
		return s.fail(w, wk, http.StatusBadRequest, "%v", err)
	}
	key := "input"
	if wk.req.Batch {
		key = wk.req.Key
	}
	if err := s.run(wk, wk.req.Flat, wk.req.Rows, key, wk.req.Unseen); err != nil {
		return s.fail(w, wk, http.StatusBadRequest, "%v", err)
	}
	wk.out = s.encodePredict(wk.out[:0], wk, wk.req.Rows, wk.req.Batch)
	s.release(wk) // the work is done; writing to a slow reader must not hold the slot
	return writeJSON(w, http.StatusOK, wk.out)
}

// newSchema is the request decoders' view of m's inputs.
func newSchema(m *model.Model) *wire.Schema {
	sc := wire.NewSchema(m.Card.Features)
	for j, in := range m.Inputs() {
		if in.Encoder != nil {
			if sc.Encoders == nil {
				sc.Encoders = make([]*category.Encoder, len(m.Card.Features))
			}
			sc.Encoders[j] = in.Encoder
		}
	}
	return sc
}

// run predicts rows (raw values, NaN = missing; a categorical feature's value
// its slot) into wk.classes/wk.probs or wk.values. A row whose standardised
// input or prediction is not finite fails the request with a wire.BadRequest
// naming it (key[i], or "row i" when key is ""; key alone when it is "input").
// Only a request that succeeded is recorded in the live-input and prediction
// metrics, so they never see a non-finite value; unseen counts, per feature,
// the categories of the request the model does not list (nil: none).
func (s *Server) run(wk *work, flat []float64, rows int, key string, unseen []int) error {
	m := s.model
	nf := len(s.schema.Features)
	numeric := s.metrics.numeric // the numeric features' network inputs
	nz := len(numeric)
	outs := m.Card.Network.Outputs
	classifier := len(s.labels) > 0
	wk.classes, wk.probs, wk.values = wk.classes[:0], wk.probs[:0], wk.values[:0]
	wk.z = wire.Grow(wk.z, rows*nz)
	for i := 0; i < rows; i++ {
		raw := flat[i*nf : (i+1)*nf]
		z := m.Preprocess(raw, wk.scratch)
		zi := wk.z[i*nz : (i+1)*nz]
		for k, in := range numeric {
			v := z[in.Offset]
			if math.IsInf(v, 0) || math.IsNaN(v) {
				j := in.Feature
				return wire.Badf("%s: the prediction is not finite for this input: %s = %s is too far outside the training data (mean %g, std %g)",
					rowName(key, i), s.schema.Features[j], wire.Clip(strconv.FormatFloat(raw[j], 'g', -1, 64)),
					m.Card.Preprocess.Mean[in.Offset], m.Card.Preprocess.Std[in.Offset])
			}
			zi[k] = v
		}
		out := m.Forward(z, wk.scratch)
		if !classifier {
			v := out[0]
			if ts := m.Card.TargetScale; ts != nil {
				v = float64(v*ts.Std) + ts.Mean // rounded first, as in model.PredictRow: no FMA on arm64
			}
			if math.IsInf(v, 0) || math.IsNaN(v) {
				return notFinite(key, i)
			}
			wk.values = append(wk.values, v)
			continue
		}
		for _, p := range out {
			if math.IsInf(p, 0) || math.IsNaN(p) {
				return notFinite(key, i)
			}
		}
		// The class rule of Predict and of the gate's metrics.
		class := model.ClassOf(out)
		if outs == 1 { // sigmoid: P(class 1)
			wk.probs = append(wk.probs, 1-out[0], out[0])
		} else {
			wk.probs = append(wk.probs, out...)
		}
		wk.classes = append(wk.classes, class)
	}
	x := s.metrics
	for i, v := range flat[:rows*nf] {
		if math.IsNaN(v) {
			x.missObs[i%nf].Inc()
		} else if c := x.catObs[i%nf]; c != nil {
			c[int(v)].Inc()
		}
	}
	for j, n := range unseen {
		if n > 0 {
			x.unseenObs[j].Add(float64(n))
		}
	}
	for i := 0; i < rows; i++ {
		x.drift.observe(wk.shard, wk.z[i*nz:(i+1)*nz])
	}
	if classifier {
		for _, c := range wk.classes {
			x.classCtr[c].Inc()
		}
	} else {
		for _, v := range wk.values {
			x.values.observeOne(wk.shard, 0, v)
		}
	}
	x.rows.Add(float64(rows))
	return nil
}

func notFinite(key string, i int) error {
	return wire.Badf("%s: the prediction is not finite for this input (its values are too far outside the training data)", rowName(key, i))
}

// rowName names row i of a request in errors: "input" for /predict's single
// row, "inputs[3]" in a batch, "row 3" for the Open Inference Protocol.
func rowName(key string, i int) string {
	switch key {
	case "input":
		return key
	case "":
		return "row " + strconv.Itoa(i)
	}
	return key + "[" + strconv.Itoa(i) + "]"
}

// encodePredict writes the /predict answer:
// one row: {"output": LABEL, "probabilities": {"LABEL": p, ...}} (classifiers) or {"output": VALUE};
// a batch: {"outputs": [...], "probabilities": [{...}, ...]}.
func (s *Server) encodePredict(b []byte, wk *work, rows int, batch bool) []byte {
	k := len(s.labels)
	probsOf := func(b []byte, i int) []byte {
		b = append(b, '{')
		for j := 0; j < k; j++ {
			if j > 0 {
				b = append(b, ',')
			}
			b = append(b, s.probKeys[j]...)
			b = strconv.AppendFloat(b, wk.probs[i*k+j], 'g', -1, 64)
		}
		return append(b, '}')
	}
	if !batch {
		b = append(b, `{"output":`...)
		if k == 0 {
			b = strconv.AppendFloat(b, wk.values[0], 'g', -1, 64)
		} else {
			b = append(b, s.labels[wk.classes[0]]...)
			b = append(b, `,"probabilities":`...)
			b = probsOf(b, 0)
		}
		return append(b, "}\n"...)
	}
	b = append(b, `{"outputs":[`...)
	for i := 0; i < rows; i++ {
		if i > 0 {
			b = append(b, ',')
		}
		if k == 0 {
			b = strconv.AppendFloat(b, wk.values[i], 'g', -1, 64)
		} else {
			b = append(b, s.labels[wk.classes[i]]...)
		}
	}
	b = append(b, ']')
	if k > 0 {
		b = append(b, `,"probabilities":[`...)
		for i := 0; i < rows; i++ {
			if i > 0 {
				b = append(b, ',')
			}
			b = probsOf(b, i)
		}
		b = append(b, ']')
	}
	return append(b, "}\n"...)
}

// appendJSONString appends s as a JSON string.
func appendJSONString(b []byte, s string) []byte {
	q, _ := json.Marshal(s)
	return append(b, q...)
}
