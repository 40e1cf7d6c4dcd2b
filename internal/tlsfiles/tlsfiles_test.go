package tlsfiles

import (
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
