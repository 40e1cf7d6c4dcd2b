// Package deploy holds what operators deploy next to graygw-controller: a
// Grafana dashboard (grafana/graygw.json) and Prometheus alerting rules
// (prometheus/graygw-alerts.yml), documented in docs/observability.md. It has
// no Go code: its tests check the rules with promtool and every dashboard
// query against a real Prometheus scraping the quick-start demo's controller.
package deploy
