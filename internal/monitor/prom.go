package monitor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/mlship/mlship/internal/fault"
)

// promClient queries the Prometheus HTTP API (/api/v1/query and
// /api/v1/query_range), with POST forms so that long queries fit.
type promClient struct {
	base  *url.URL
	token string
	hc    *http.Client
	// queries counts the round trips (for tests and the report).
	queries int
}

// sample is one series of an instant vector.
type sample struct {
	Labels map[string]string
	Value  float64
}

// series is one series of a range matrix.
type series struct {
	Labels map[string]string
	Points []point
}

type point struct {
	T time.Time
	V float64
}

type apiAnswer struct {
	Status    string          `json:"status"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
	Data      json.RawMessage `json:"data"`
}

type apiData struct {
	ResultType string `json:"resultType"`
	Result     []struct {
		Metric map[string]string `json:"metric"`
		Value  []any             `json:"value"`
		Values [][]any           `json:"values"`
	} `json:"result"`
}

// maxAnswer bounds an answer: 100 features x 12 buckets x 100 points is far
// below it.
const maxAnswer = 256 << 20

func newPromClient(raw, token string, timeout time.Duration) (*promClient, error) {
	u, err := url.Parse(strings.TrimRight(raw, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fault.Field("prometheus", "must be an http(s) URL, got %q", raw)
	}
	if u.User != nil {
		return nil, fault.Field("prometheus", "must not hold credentials (give a bearer token in $MLSHIP_PROMETHEUS_TOKEN)")
	}
	return &promClient{base: u, token: token, hc: &http.Client{Timeout: timeout}}, nil
}

// instant runs query at time at.
func (c *promClient) instant(ctx context.Context, query string, at time.Time) ([]sample, error) {
	form := url.Values{"query": {query}, "time": {formatTime(at)}}
	d, err := c.call(ctx, "/api/v1/query", form)
	if err != nil {
		return nil, err
	}
	if d.ResultType != "vector" {
		return nil, fmt.Errorf("prometheus %s: query answered a %s, want a vector", c.base.Redacted(), d.ResultType)
	}
	out := make([]sample, 0, len(d.Result))
	for _, r := range d.Result {
		v, err := parseValue(r.Value)
		if err != nil {
			return nil, fmt.Errorf("prometheus %s: %w", c.base.Redacted(), err)
		}
		out = append(out, sample{Labels: r.Metric, Value: v})
	}
	return out, nil
}

// rangeQuery runs query from start to end every step.
func (c *promClient) rangeQuery(ctx context.Context, query string, start, end time.Time, step time.Duration) ([]series, error) {
	form := url.Values{"query": {query}, "start": {formatTime(start)}, "end": {formatTime(end)},
		"step": {strconv.FormatFloat(step.Seconds(), 'f', -1, 64)}}
	d, err := c.call(ctx, "/api/v1/query_range", form)
	if err != nil {
		return nil, err
	}
	if d.ResultType != "matrix" {
		return nil, fmt.Errorf("prometheus %s: range query answered a %s, want a matrix", c.base.Redacted(), d.ResultType)
	}
	out := make([]series, 0, len(d.Result))
	for _, r := range d.Result {
		s := series{Labels: r.Metric}
		for _, p := range r.Values {
			if len(p) != 2 {
				return nil, fmt.Errorf("prometheus %s: a point is not [time, value]", c.base.Redacted())
			}
			ts, ok := p[0].(float64)
			if !ok {
				return nil, fmt.Errorf("prometheus %s: a point's time is not a number", c.base.Redacted())
			}
			v, err := parseValue(p)
			if err != nil {
				return nil, fmt.Errorf("prometheus %s: %w", c.base.Redacted(), err)
			}
			s.Points = append(s.Points, point{T: time.Unix(0, int64(ts*1e9)).UTC(), V: v})
		}
		out = append(out, s)
	}
	return out, nil
}

// call POSTs form to path and decodes the API's envelope. Prometheus that
// cannot be reached, answers 5xx or times out a query is the environment (exit
// 3); a URL that is not a Prometheus API or a query it refuses is the input
// (exit 2).
func (c *promClient) call(ctx context.Context, path string, form url.Values) (*apiData, error) {
	c.queries++
	where := c.base.Redacted()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base.String()+path, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("prometheus %s: %w", where, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "mlship")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fault.Envf("prometheus %s: %w", where, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		return nil, fault.Envf("prometheus %s: reading the answer: %w", where, err)
	}
	if len(body) > maxAnswer {
		return nil, fmt.Errorf("prometheus %s: answer is larger than %d bytes", where, maxAnswer)
	}
	var a apiAnswer
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	jerr := json.Unmarshal(body, &a)
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return nil, fault.Inputf("prometheus %s: %d %s (give a bearer token in $MLSHIP_PROMETHEUS_TOKEN)", where, resp.StatusCode, http.StatusText(resp.StatusCode))
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		msg := a.Error
		if jerr != nil || msg == "" {
			msg = http.StatusText(resp.StatusCode)
		}
		return nil, fault.Envf("prometheus %s: %d: %s", where, resp.StatusCode, msg)
	case jerr != nil || a.Status == "":
		return nil, fault.Inputf("prometheus %s: POST %s answered %d %s, not the Prometheus HTTP API (is the URL Prometheus's base URL?)", where, path, resp.StatusCode, orUnknown(ct))
	case a.Status != "success":
		if a.ErrorType == "timeout" || a.ErrorType == "canceled" || a.ErrorType == "unavailable" {
			return nil, fault.Envf("prometheus %s: query %s: %s", where, a.ErrorType, a.Error)
		}
		return nil, fault.Inputf("prometheus %s: query refused (%s): %s", where, a.ErrorType, a.Error)
	}
	var d apiData
	if err := json.Unmarshal(a.Data, &d); err != nil {
		return nil, fmt.Errorf("prometheus %s: decoding the answer: %w", where, err)
	}
	return &d, nil
}

func orUnknown(ct string) string {
	if ct == "" {
		return "without a content type"
	}
	return ct
}

// parseValue reads the value of a [time, "value"] pair.
func parseValue(p []any) (float64, error) {
	if len(p) != 2 {
		return 0, errors.New("a sample is not [time, value]")
	}
	s, ok := p[1].(string)
	if !ok {
		return 0, errors.New("a sample's value is not a string")
	}
	return strconv.ParseFloat(s, 64)
}

func formatTime(t time.Time) string {
	return strconv.FormatFloat(float64(t.UnixNano())/1e9, 'f', 3, 64)
}
