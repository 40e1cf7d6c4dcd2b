package server

import (
	"errors"
	"fmt"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/graygw/graygw/agent/dataplane"
)

// ErrSpace is the p4.Error space of the agent's per-update errors.
const ErrSpace = "graygw-agent"

// Sentinel errors of New.
var (
	// ErrPipeline: the P4Info given to New lacks a table, field, action or counter
	// the agent binds to the dataplane, or has it with another shape.
	ErrPipeline = errors.New("server: P4Info does not match the graygw pipeline")
)

// uerr is the outcome of one update or one read request: a canonical code and a
// message. nil means OK.
type uerr struct {
	code codes.Code
	msg  string
}

func errf(code codes.Code, format string, args ...any) *uerr {
	return &uerr{code: code, msg: fmt.Sprintf(format, args...)}
}

// Error implements error.
func (e *uerr) Error() string { return e.code.String() + ": " + e.msg }

// grpc turns e into an RPC-wide status.
func (e *uerr) grpc() error { return status.Error(e.code, e.msg) }

// dpErr maps a dataplane error to a P4Runtime code (docs/agent.md, "Errors").
func dpErr(what string, err error) *uerr {
	switch {
	case errors.Is(err, dataplane.ErrFull):
		return errf(codes.ResourceExhausted, "%s: %v", what, err)
	case errors.Is(err, dataplane.ErrOutOfRange):
		return errf(codes.OutOfRange, "%s: %v", what, err)
	case errors.Is(err, dataplane.ErrNotFound):
		return errf(codes.NotFound, "%s: %v", what, err)
	case errors.Is(err, dataplane.ErrExists):
		return errf(codes.AlreadyExists, "%s: %v", what, err)
	case errors.Is(err, dataplane.ErrUnimplemented):
		return errf(codes.Unimplemented, "%s: %v", what, err)
	}
	return errf(codes.Internal, "%s: dataplane: %v", what, err)
}

// batchStatus is the status of a batch (Write or Read) in which at least one
// element failed: UNKNOWN, with one p4.Error per element in order, OK ones with
// only the code set (spec §12.3 "Error Reporting").
func batchStatus(what string, errs []*uerr) error {
	st := &spb.Status{Code: int32(codes.Unknown), Message: what}
	failed := 0
	for _, e := range errs {
		pe := &p4v1.Error{CanonicalCode: int32(codes.OK)}
		if e != nil {
			failed++
			pe.CanonicalCode, pe.Message, pe.Space = int32(e.code), e.msg, ErrSpace
		}
		a, err := anypb.New(pe)
		if err != nil {
			return status.Errorf(codes.Internal, "encoding error details: %v", err)
		}
		st.Details = append(st.Details, a)
	}
	st.Message = fmt.Sprintf("%s: %d of %d failed", what, failed, len(errs))
	for _, e := range errs {
		if e != nil {
			st.Message += "; first: " + e.Error()
			break
		}
	}
	return status.ErrorProto(st)
}

// singleStatus is the status of a one-element request that failed: the
// element's code and message, with the p4.Error detail a batch would carry.
func singleStatus(what string, e *uerr) error {
	st, ok := status.FromError(batchStatus(what, []*uerr{e}))
	if !ok {
		return e.grpc()
	}
	p := st.Proto()
	p.Code, p.Message = int32(e.code), e.msg
	return status.ErrorProto(p)
}
