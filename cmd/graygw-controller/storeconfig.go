package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/graygw/graygw/controller/store"
	"github.com/graygw/graygw/controller/store/etcdstore"
	"github.com/graygw/graygw/controller/store/migrate"
)

// storeConfig is the store: key: a bbolt file path (the default, one
// controller), or a mapping {etcd: {...}} for an etcd cluster that several
// controller replicas share (docs/ha.md). {file: PATH} is the long form of a
// path.
type storeConfig struct {
	File string
	Etcd *etcdstore.Config
}

// storeKeys and etcdKeys are the keys the mapping form accepts: the config
// file refuses unknown keys everywhere else too.
var (
	storeKeys = []string{"file", "etcd"}
	etcdKeys  = []string{"endpoints", "prefix", "tls_cert", "tls_key", "tls_ca", "dial_timeout", "request_timeout"}
)

// UnmarshalYAML implements yaml.Unmarshaler.
func (s *storeConfig) UnmarshalYAML(n *yaml.Node) error {
	*s = storeConfig{}
	if n.Kind == yaml.ScalarNode {
		s.File = n.Value
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: store: want a file path or a mapping with file or etcd", n.Line)
	}
	if err := knownKeys(n, "store", storeKeys); err != nil {
		return err
	}
	var m struct {
		File string            `yaml:"file"`
		Etcd *etcdstore.Config `yaml:"etcd"`
	}
	if err := n.Decode(&m); err != nil {
		return err
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "etcd" {
			if err := knownKeys(n.Content[i+1], "store.etcd", etcdKeys); err != nil {
				return err
			}
		}
	}
	if (m.File == "") == (m.Etcd == nil) {
		return fmt.Errorf("line %d: store: give file or etcd, not both or neither", n.Line)
	}
	s.File, s.Etcd = m.File, m.Etcd
	return nil
}

func knownKeys(n *yaml.Node, where string, keys []string) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: %s: want a mapping", n.Line, where)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; !slices.Contains(keys, k.Value) {
			return fmt.Errorf("line %d: %s: field %s not found (want %s)", k.Line, where, k.Value, strings.Join(keys, ", "))
		}
	}
	return nil
}

// validate names every problem of the store: key.
func (s storeConfig) validate() []string {
	if s.Etcd == nil {
		return nil
	}
	err := s.Etcd.Validate()
	if err == nil {
		return nil
	}
	var out []string
	for _, line := range strings.Split(err.Error(), "\n") {
		out = append(out, "store."+line)
	}
	return out
}

// String says which store, for logs and --check.
func (s storeConfig) String() string {
	if s.Etcd != nil {
		p := s.Etcd.Prefix
		if p == "" {
			p = "/graygw/"
		}
		return fmt.Sprintf("etcd %s prefix %s", strings.Join(s.Etcd.Endpoints, ","), p)
	}
	return "bbolt " + s.File
}

// open opens the store, with its retention (store_retention) on either.
func (s storeConfig) open(ctx context.Context, retain store.Retention) (store.Store, error) {
	if s.Etcd != nil {
		cfg := *s.Etcd
		cfg.RetainVersions, cfg.RetainAge = retain.Versions, retain.Age
		return etcdstore.Open(ctx, cfg)
	}
	return store.OpenBolt(s.File, store.BoltOptions{Retain: retain})
}

// loadStoreConfig reads a file holding a store: key (the target of
// --migrate-store-to).
func loadStoreConfig(path string) (storeConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return storeConfig{}, err
	}
	var doc struct {
		Store *storeConfig `yaml:"store"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return storeConfig{}, fmt.Errorf("%s: %w", path, err)
	}
	if doc.Store == nil {
		return storeConfig{}, fmt.Errorf("%s: no store: key", path)
	}
	if p := doc.Store.validate(); len(p) > 0 {
		return storeConfig{}, fmt.Errorf("%s: %s", path, strings.Join(p, "; "))
	}
	return *doc.Store, nil
}

var errSameStore = errors.New("the source and the destination are the same store")

// migrateStore copies c.Store whole into the empty store c.migrateTo names and
// checks the copy (controller/store/migrate).
func migrateStore(c *config, out io.Writer) error {
	to, err := loadStoreConfig(c.migrateTo)
	if err != nil {
		return err
	}
	if to.String() == c.Store.String() {
		return fmt.Errorf("%w: %s", errSameStore, to)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	src, err := c.Store.open(ctx, store.Retention{})
	if err != nil {
		return fmt.Errorf("source %s: %w", c.Store, err)
	}
	defer src.Close()
	dst, err := to.open(ctx, store.Retention{})
	if err != nil {
		return fmt.Errorf("destination %s: %w", to, err)
	}
	defer dst.Close()
	st, err := migrate.Copy(ctx, src, dst)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "copied %s -> %s: %d intent versions, %d history events, %d records in %d namespaces; the copy reads back equal\n",
		c.Store, to, st.Versions, st.Events, st.Records, st.Namespaces)
	return nil
}
