package p4rt

import (
	"context"
	"errors"
	"fmt"
	"strings"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// UpdateError is the failure of one update of a batch.
type UpdateError struct {
	Index   int // index into the updates passed to Write
	Code    codes.Code
	Message string
}

func (e UpdateError) Error() string {
	return fmt.Sprintf("update %d: %s: %s", e.Index, e.Code, e.Message)
}

// WriteError is returned by Write when some updates failed. The other updates of
// the batch were applied (CONTINUE_ON_ERROR).
type WriteError struct {
	Failed []UpdateError
}

func (e *WriteError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "p4rt: %d update(s) failed", len(e.Failed))
	for i, f := range e.Failed {
		if i == 5 {
			fmt.Fprintf(&b, "; and %d more", len(e.Failed)-5)
			break
		}
		b.WriteString("; ")
		b.WriteString(f.Error())
	}
	return b.String()
}

// Codes returns the set of error codes among the failed updates.
func (e *WriteError) Codes() map[codes.Code]int {
	m := map[codes.Code]int{}
	for _, f := range e.Failed {
		m[f.Code]++
	}
	return m
}

// DefaultBatch is the number of updates sent in one WriteRequest.
const DefaultBatch = 1000

// Write sends updates in batches of batch (DefaultBatch if <= 0), in order: a
// later batch is sent only after the earlier one was answered, so callers get
// make-before-break ordering by ordering the updates. It returns a *WriteError
// listing every failed update, or another error if a batch was not answered.
func (c *Client) Write(ctx context.Context, updates []*p4v1.Update, batch int) error {
	if batch <= 0 {
		batch = DefaultBatch
	}
	var failed []UpdateError
	for start := 0; start < len(updates); start += batch {
		end := min(start+batch, len(updates))
		if !c.IsPrimary() {
			return fmt.Errorf("p4rt: %s: write: %w", c.addr, ErrNotPrimary)
		}
		_, err := c.rt.Write(ctx, &p4v1.WriteRequest{
			DeviceId: c.opts.DeviceID, ElectionId: c.electionID(), Role: c.opts.Role,
			Updates: updates[start:end], Atomicity: p4v1.WriteRequest_CONTINUE_ON_ERROR,
		})
		if err == nil {
			continue
		}
		perUpdate, ok := decodeBatchError(err, start, end-start)
		if !ok {
			return fmt.Errorf("p4rt: %s: write of updates %d..%d: %w", c.addr, start, end-1, err)
		}
		failed = append(failed, perUpdate...)
	}
	if len(failed) > 0 {
		return &WriteError{Failed: failed}
	}
	return nil
}

// WritePhases writes each phase with Write, one after the other, stopping at the
// first phase with a failure: a later phase may depend on an earlier one (make
// before break), so it must not be sent after a failure.
func (c *Client) WritePhases(ctx context.Context, phases [][]*p4v1.Update, batch int) error {
	for i, ph := range phases {
		if err := c.Write(ctx, ph, batch); err != nil {
			return fmt.Errorf("phase %d of %d: %w", i+1, len(phases), err)
		}
	}
	return nil
}

// decodeBatchError reads the one p4.Error per update that a P4Runtime server puts
// in the status details of a failed batch (spec §12.3). ok is false when the error
// carries no such details (the whole request was refused).
func decodeBatchError(err error, offset, n int) ([]UpdateError, bool) {
	st, isStatus := status.FromError(err)
	if !isStatus {
		return nil, false
	}
	details := st.Details()
	if len(details) != n {
		return nil, false
	}
	var out []UpdateError
	for i, d := range details {
		pe, ok := d.(*p4v1.Error)
		if !ok {
			return nil, false
		}
		if codes.Code(pe.GetCanonicalCode()) != codes.OK {
			out = append(out, UpdateError{Index: offset + i, Code: codes.Code(pe.GetCanonicalCode()), Message: pe.GetMessage()})
		}
	}
	return out, true
}

// IsCode reports whether err is a *WriteError whose every failure has code, or a
// gRPC status error with that code.
func IsCode(err error, code codes.Code) bool {
	var we *WriteError
	if errors.As(err, &we) {
		for _, f := range we.Failed {
			if f.Code != code {
				return false
			}
		}
		return len(we.Failed) > 0
	}
	return status.Code(errors.Unwrap(err)) == code || status.Code(err) == code
}
