package rollout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/graygw/graygw/controller/store"
)

// ErrNoProgress is returned by Store.Load when nothing was saved yet.
var ErrNoProgress = errors.New("rollout: no saved progress")

// Store keeps the progress of the current rollout. Save must be durable when
// it returns: the rollout takes the next action only after it. The
// controller's store implements it; FileStore and MemoryStore are here for
// tests and single-process use.
type Store interface {
	// Save replaces the saved progress with p.
	Save(ctx context.Context, p *Progress) error
	// Load returns the saved progress, or an error wrapping ErrNoProgress.
	Load(ctx context.Context) (*Progress, error)
}

// FileStore saves progress as JSON in one file, replaced atomically (written
// beside it, synced, renamed, directory synced), so a crash leaves either the
// old or the new progress, never a torn one.
type FileStore struct {
	Path string
	mu   sync.Mutex
}

// NewFileStore returns a store writing to path; its directory must exist.
func NewFileStore(path string) *FileStore { return &FileStore{Path: path} }

// Save writes p atomically.
func (s *FileStore) Save(_ context.Context, p *Progress) error {
	data, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return fmt.Errorf("rollout: encode progress: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	dir := filepath.Dir(s.Path)
	f, err := os.CreateTemp(dir, filepath.Base(s.Path)+".tmp*")
	if err != nil {
		return fmt.Errorf("rollout: save progress: %w", err)
	}
	tmp := f.Name()
	_, werr := f.Write(append(data, '\n'))
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("rollout: save progress: %w", err)
	}
	if err := os.Rename(tmp, s.Path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("rollout: save progress: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// Load reads the saved progress.
func (s *FileStore) Load(_ context.Context) (*Progress, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	data, err := os.ReadFile(s.Path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNoProgress
	}
	if err != nil {
		return nil, fmt.Errorf("rollout: load progress: %w", err)
	}
	var p Progress
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("rollout: load progress from %s: %w", s.Path, err)
	}
	return &p, nil
}

// MemoryStore keeps progress in memory (a deep copy through JSON, so what is
// loaded is what a durable store would give back).
type MemoryStore struct {
	mu   sync.Mutex
	data []byte
	// Saves counts successful saves.
	Saves int
	// Fail, if set, makes Save return it.
	Fail error
}

// Save stores a copy of p.
func (s *MemoryStore) Save(_ context.Context, p *Progress) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Fail != nil {
		return s.Fail
	}
	data, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("rollout: encode progress: %w", err)
	}
	s.data = data
	s.Saves++
	return nil
}

// Load returns a copy of the saved progress.
func (s *MemoryStore) Load(_ context.Context) (*Progress, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.data == nil {
		return nil, ErrNoProgress
	}
	var p Progress
	if err := json.Unmarshal(s.data, &p); err != nil {
		return nil, fmt.Errorf("rollout: decode progress: %w", err)
	}
	return &p, nil
}

// Where ControllerStore keeps the progress in the controller's store (JSON of
// Progress).
const (
	StoreNamespace = "rollout"
	StoreKey       = "current"
)

// ControllerStore keeps the progress in the controller's store (the one that
// holds the intent versions), so a restarted controller reports and resumes
// the rollout exactly where it stopped. Every Save is a durable Put before the
// rollout acts on it.
type ControllerStore struct{ Store store.Store }

// Save implements Store.
func (s ControllerStore) Save(ctx context.Context, p *Progress) error {
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	return s.Store.Put(ctx, StoreNamespace, StoreKey, b)
}

// Load implements Store.
func (s ControllerStore) Load(ctx context.Context) (*Progress, error) {
	b, err := s.Store.Get(ctx, StoreNamespace, StoreKey)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrNoProgress
	}
	if err != nil {
		return nil, err
	}
	var p Progress
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("stored rollout progress: %w", err)
	}
	return &p, nil
}
