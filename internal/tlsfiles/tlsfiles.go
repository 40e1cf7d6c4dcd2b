// Package tlsfiles reads the PEM files graygw's TLS configurations name: the
// CA bundle a peer's certificate must chain to. Every client and server of
// graygw (the CLI, the controller, the agent, the speaker, the etcd store)
// loads its bundle here, so a file without a certificate is refused the same
// way everywhere.
package tlsfiles

import (
	"crypto/x509"
	"fmt"
	"os"
)

// CertPool reads the PEM CA bundle at path into a pool. A file that holds no
// PEM certificate is an error, not an empty pool that would refuse every peer.
func CertPool(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no PEM certificate in it", path)
	}
	return pool, nil
}
