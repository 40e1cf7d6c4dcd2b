// Package kinderr makes errors of a kind: the caller tests the kind, a
// sentinel, with errors.Is, and the message is the error's own (the
// sentinel's text is not prefixed to it, so an API can pass the message on as
// it is).
package kinderr

import "fmt"

type kindError struct {
	kind error
	msg  string
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }

// Errorf returns an error of kind whose message is format applied to args.
func Errorf(kind error, format string, args ...any) error {
	return &kindError{kind: kind, msg: fmt.Sprintf(format, args...)}
}
