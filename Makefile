# mlship's front door. `make demo` runs the main job; `make test` runs every test
# and does its own set-up.
GO        ?= go
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -buildid= -X github.com/mlship/mlship/internal/version.Version=$(VERSION)
GOBUILD   := CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)"
BIN       := bin



.PHONY: all build serverbins demo test gen test-unit test-integration lint fuzz bench bench-train bench-serve bench-image bench-deploy bench-actions bench-monitor kube-build kube-up kube-down clean

all: build

SERVE_PLATFORMS := linux/amd64 linux/arm64
SERVERBIN       := internal/image/serverbin/bin

## build: static, reproducible binaries in bin/; mlship embeds mlship-serve for each platform
build: serverbins
	$(GOBUILD) -o $(BIN)/mlship ./cmd/mlship
	$(GOBUILD) -o $(BIN)/mlship-serve ./cmd/mlship-serve

## serverbins: cross-compile mlship-serve for the image platforms (embedded by mlship)
serverbins:
	@for p in $(SERVE_PLATFORMS); do \
	  os=$${p%/*}; arch=$${p#*/}; out=$(SERVERBIN)/mlship-serve-$$os-$$arch; \
	  GOOS=$$os GOARCH=$$arch $(GOBUILD) -o $$out ./cmd/mlship-serve && gzip -n -9 -f $$out || exit 1; \
	done

## demo: the main job on the embedded default (examples/heart-disease), no registry or cluster
demo: build
	$(BIN)/mlship run examples/heart-disease

# The packages with concurrency of their own run under the race detector.
RACE_PKGS := ./internal/serve ./internal/comment ./internal/deploy ./internal/image

## test: set-up, vet, formatting, staticcheck and every test (what .ci/run runs);
## the concurrent packages under -race
test: lint serverbins
	bash hack/setup.sh
	$(GO) test -count=1 $$($(GO) list ./... | grep -v -x -F $(foreach p,$(RACE_PKGS),-e github.com/mlship/mlship/$(p:./%=%)))
	$(GO) test -count=1 -race $(RACE_PKGS)
	cd dagger && $(GO) build ./... && DAGGER_SESSION_PORT=0 DAGGER_SESSION_TOKEN=test $(GO) test -count=1 ./...
	bash dagger/hack/bindings.sh --check

test-unit:
	$(GO) test -short ./...

test-integration: test

## lint: go vet, gofmt, staticcheck (installed by hack/tools.sh, pinned), and what is
## generated from the spec current (mlship gen readme, mlship gen files)
lint: serverbins
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	"$$(bash hack/tools.sh staticcheck)/staticcheck" ./...
	cd dagger && $(GO) vet ./... && "$$(bash ../hack/tools.sh staticcheck)/staticcheck" ./...
	$(GO) run ./cmd/mlship gen readme --check
	$(GO) run ./cmd/mlship gen files --check

## gen: rewrite what is generated from the spec (README tables, actions/*/action.yml, action.yml,
## ci-templates/, dagger/steps_generated.go) and the Dagger module's bindings
gen:
	$(GO) run ./cmd/mlship gen readme
	$(GO) run ./cmd/mlship gen files
	bash dagger/hack/bindings.sh

## fuzz: fuzz the CSV reader and the server's request decoders (FUZZTIME each)
FUZZTIME ?= 30s
fuzz:
	$(GO) test ./internal/dataset -run '^$$' -fuzz FuzzReadCSV -fuzztime $(FUZZTIME)
	$(GO) test ./internal/serve/wire -run '^$$' -fuzz FuzzDecodePredict -fuzztime $(FUZZTIME)
	$(GO) test ./internal/serve/wire -run '^$$' -fuzz FuzzFlattenNumbers -fuzztime $(FUZZTIME)

## bench: Go benchmarks and the peer benchmarks
bench: bench-train bench-serve bench-image bench-deploy
	$(GO) test -run '^$$' -bench . -benchtime 2s ./internal/train/ ./internal/serve/

## bench-actions: the GitHub actions' own overhead under act, against the binary in a run: step
bench-actions: build
	bash bench/actions.sh

## bench-monitor: mlship monitor over 100 features and 24 h of history (backfilled into a
## real Prometheus with promtool) against Prometheus's own evaluation of the same queries
bench-monitor:
	$(GO) test -run '^$$' -bench Monitor100Features24h -benchtime 5x ./internal/monitor/

## bench-deploy: kubectl-deploy vs kubectl apply + rollout status on a local control plane
bench-deploy:
	bash bench/deploy.sh

## bench-image: build-push-image vs crane append + crane mutate, image size, bytes on a model-only change
bench-image:
	bash bench/image.sh

## bench-serve: mlship-serve vs an empty Go handler and Flask + gunicorn (wrk)
bench-serve:
	bash bench/serve.sh

## bench-train: mlship vs scikit-learn and torch on the heart recipe, then CNNs vs torch (bench/train/cnn.sh)
bench-train:
	bash bench/train.sh
	bash bench/train/cnn.sh

## kube-build: build the test control plane's binaries (cached outside the tree; hack/kube/build.sh)
kube-build:
	bash hack/kube/build.sh

## kube-up / kube-down: a local control plane in KUBE_DIR (KUBECONFIG=$(KUBE_DIR)/kubeconfig)
KUBE_DIR ?= .cache/kube
kube-up: kube-build
	bash hack/kube/up.sh $(KUBE_DIR)
kube-down:
	bash hack/kube/down.sh $(KUBE_DIR)

clean:
	rm -rf $(BIN) mlship-out
