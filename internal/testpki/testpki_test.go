package testpki_test

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"testing"

	"github.com/graygw/graygw/internal/testpki"
)

// A server and a client certified by the CA complete a mutual TLS handshake
// over loopback, by IP and by name; a client without a certificate does not.
func TestMutualTLS(t *testing.T) {
	ca := testpki.New(t, t.TempDir())
	certFile, keyFile := ca.Issue(t, "agent", x509.ExtKeyUsageServerAuth)
	srvCert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{srvCert},
		ClientCAs: ca.Pool, ClientAuth: tls.RequireAndVerifyClientCert})
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			c.(*tls.Conn).Handshake()
			c.Write([]byte{1})
			c.Close()
		}
	}()
	client := ca.Cert(t, "controller", x509.ExtKeyUsageClientAuth)
	for _, name := range []string{"127.0.0.1", "localhost", "agent"} {
		got, err := roundTrip(lis.Addr().String(), &tls.Config{RootCAs: ca.Pool, ServerName: name, Certificates: []tls.Certificate{client}})
		if err != nil || got != 1 {
			t.Errorf("server name %s: %v", name, err)
		}
	}
	if _, err := roundTrip(lis.Addr().String(), &tls.Config{RootCAs: ca.Pool, ServerName: "agent"}); err == nil {
		t.Error("a client without a certificate got through")
	}
}

func roundTrip(addr string, cfg *tls.Config) (byte, error) {
	c, err := tls.DialWithDialer(&net.Dialer{}, "tcp", addr, cfg)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	var b [1]byte
	_, err = c.Read(b[:])
	return b[0], err
}
