#!/usr/bin/env bash
# Regenerate the Go code of the controller API (api/graygw/v1) from its .proto.
#
# Needs protoc (Debian: apt-get install protobuf-compiler) and the two plugins at
# the versions the committed code was generated with:
#   go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
#   go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.5.1
# The generated files are committed, so building graygw needs none of this.
set -euo pipefail
cd "$(dirname "$0")/.."

export PATH="$(go env GOPATH)/bin:$PATH"
for tool in protoc protoc-gen-go protoc-gen-go-grpc; do
	command -v "$tool" >/dev/null || { echo "genapi: $tool not found (see the comment in $0)" >&2; exit 1; }
done

protoc --proto_path=api \
	--go_out=. --go_opt=module=github.com/graygw/graygw \
	--go-grpc_out=. --go-grpc_opt=module=github.com/graygw/graygw \
	api/graygw/v1/graygw.proto
echo "genapi: api/graygw/v1 regenerated with $(protoc --version), $(protoc-gen-go --version), $(protoc-gen-go-grpc --version)"
