// Package find looks up an element of a slice in place: the accessors that
// return a pointer into a list by name or id (intent.Intent.Pool,
// compile.Result.Gateway...) are one call to First.
package find

// First returns a pointer to the first element of s that match accepts, and
// true; nil and false when none does. The pointer aliases s.
func First[T any](s []T, match func(*T) bool) (*T, bool) {
	for i := range s {
		if match(&s[i]) {
			return &s[i], true
		}
	}
	return nil, false
}
