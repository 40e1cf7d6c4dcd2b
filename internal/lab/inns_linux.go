package lab

import (
	"errors"
	"runtime"

	"github.com/vishvananda/netns"
)

// InNamespace runs f on an OS thread inside the named network namespace, so the
// sockets f opens belong to that namespace (they stay there after f returns).
// The thread goes back to its original namespace afterwards; if it cannot, it
// stays locked and dies with its goroutine rather than serve other goroutines
// from the wrong namespace.
func InNamespace(name string, f func() error) error {
	ns, err := netns.GetFromName(name)
	if err != nil {
		return err
	}
	defer ns.Close()
	return InHandle(ns, f)
}

// InHandle is InNamespace for the namespace ns refers to.
func InHandle(ns netns.NsHandle, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer orig.Close()
		if err := netns.Set(ns); err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		ferr := f()
		if err := netns.Set(orig); err != nil {
			errc <- errors.Join(ferr, err)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}
