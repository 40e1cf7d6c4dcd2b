package tlsfiles

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/graygw/graygw/internal/testpki"
)

func TestCertPool(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.New(t, dir)
	pool, err := CertPool(ca.File)
	if err != nil {
		t.Fatal(err)
	}
	leaf := ca.Cert(t, "agent", x509.ExtKeyUsageServerAuth)
	cert, _ := x509.ParseCertificate(leaf.Certificate[0])
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: "agent"}); err != nil {
		t.Fatalf("a certificate the bundle's CA signed does not verify with the pool: %v", err)
	}

	empty := filepath.Join(dir, "empty.pem")
	if err := os.WriteFile(empty, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := CertPool(empty); err == nil || !strings.Contains(err.Error(), empty+": no PEM certificate in it") {
		t.Fatalf("a bundle without a certificate: %v, want an error naming it", err)
	}
	if _, err := CertPool(filepath.Join(dir, "missing.pem")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a missing bundle: %v, want ErrNotExist", err)
	}
}

func TestClient(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.New(t, dir)
	cert, key := ca.Issue(t, "cli", x509.ExtKeyUsageClientAuth)
	cfg, err := Client(cert, key, ca.File, "--tls-cert/--tls-key", "--tls-ca")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Certificates) != 1 || cfg.RootCAs == nil || cfg.MinVersion != tls.VersionTLS12 {
		t.Fatalf("Client = %d certificates, RootCAs %v, MinVersion %#x; want 1, the bundle, TLS 1.2", len(cfg.Certificates), cfg.RootCAs, cfg.MinVersion)
	}
	leaf, _ := x509.ParseCertificate(cfg.Certificates[0].Certificate[0])
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: cfg.RootCAs, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("the client certificate does not chain to the configured bundle: %v", err)
	}
	// An error names the option whose file failed.
	if _, err := Client(key, key, ca.File, "--tls-cert/--tls-key", "--tls-ca"); err == nil || !strings.HasPrefix(err.Error(), "--tls-cert/--tls-key: ") {
		t.Errorf("a key as certificate: %v, want an error starting with --tls-cert/--tls-key", err)
	}
	if _, err := Client(cert, key, filepath.Join(dir, "missing.pem"), "--tls-cert/--tls-key", "--tls-ca"); !errors.Is(err, fs.ErrNotExist) || !strings.HasPrefix(err.Error(), "--tls-ca: ") {
		t.Errorf("a missing bundle: %v, want ErrNotExist starting with --tls-ca", err)
	}
}
