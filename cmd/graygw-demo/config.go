package main

import (
	"fmt"
	"path/filepath"
)

// controllerConfig is the controller's config file for the lab.
func (d *demo) controllerConfig(intent string) string {
	return fmt.Sprintf(`# graygw demo controller
store: %s
intent: %s
election_id: 10
interval: 10s
listen:
  unix: %s
log: {level: info, format: text}
`, filepath.Join(d.dir, "controller.db"), intent, d.sock())
}
