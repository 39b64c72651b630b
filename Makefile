# The test command the README gives and CI runs.
.PHONY: test unit compat build fuzz

build:
	go build -o bin/samsa ./cmd/samsa

# Everything: vet, the Go suites with the race detector (unit, integration over TCP, crash
# tests with real processes), then the external-client compatibility suite.
test: unit compat

# The fault campaign runs after the other packages, alone: its network proxies find which node
# opened a connection through /proc, which is slow while other packages' tests hold thousands
# of sockets, and its timings (leases, sessions) suffer on a machine they keep busy.
unit:
	go vet ./...
	go test -race -count=1 -timeout 20m $$(go list ./... | grep -v '/internal/campaign$$')
	go test -race -count=1 -timeout 20m ./internal/campaign

compat:
	bash compat/run.sh

# A short run of every fuzz target (the seeds also run as part of `go test`).
fuzz:
	go test -run XXX -fuzz FuzzParseRequestHeader -fuzztime 30s ./internal/wire
	go test -run XXX -fuzz FuzzReadFrame -fuzztime 30s ./internal/wire
	go test -run XXX -fuzz FuzzForwardedClientOf -fuzztime 30s ./internal/wire
	go test -run XXX -fuzz FuzzValidate -fuzztime 30s ./internal/records
	go test -run XXX -fuzz FuzzDecompress -fuzztime 30s ./internal/records
	go test -run XXX -fuzz FuzzDecodeImage -fuzztime 30s ./internal/metadata
	go test -run XXX -fuzz FuzzDecodeBatch -fuzztime 30s ./internal/metadata
	go test -run XXX -fuzz FuzzRecover -fuzztime 30s ./internal/storage
	go test -run XXX -fuzz FuzzStateFiles -fuzztime 30s ./internal/storage
	go test -run XXX -fuzz FuzzClean -fuzztime 30s ./internal/storage
	go test -run XXX -fuzz FuzzDecodeRecord -fuzztime 30s ./internal/txn
	go test -run XXX -fuzz FuzzReplay -fuzztime 30s ./internal/group/consumer
	go test -run XXX -fuzz FuzzShardOps -fuzztime 30s ./internal/group
