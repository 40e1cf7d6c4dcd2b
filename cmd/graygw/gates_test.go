package main

import (
	"strings"
	"testing"

	"github.com/graygw/graygw/controller/rollout"
)

// rollout status shows each step's gates, and says which failed and why.
func TestProgressTableShowsGates(t *testing.T) {
	p := &rollout.Progress{Plan: rollout.PlanSpec{Name: "r", Pool: "gray"}, State: rollout.StateFailed, Step: 2, Total: 2,
		Steps: []rollout.StepRecord{
			{Step: rollout.Step{Index: 1, Kind: rollout.StepVNI, VNI: 5001}, State: rollout.StepDone,
				Gates: []rollout.GateResult{{Gate: "no_new_drops", OK: true}, {Gate: "rule_traffic", OK: true}}},
			{Step: rollout.Step{Index: 2, Kind: rollout.StepVNI, VNI: 5002}, State: rollout.StepRolledBack,
				Gates: []rollout.GateResult{{Gate: "no_new_drops", OK: false, Detail: "new drops during the step: NO_BACKEND +4"}, {Gate: "rule_traffic", OK: true}}},
		}}
	var b strings.Builder
	printProgressTable(&b, p)
	for _, want := range []string{"GATES", "2/2 ok", "no_new_drops failed", "step 2 gate no_new_drops failed: new drops during the step: NO_BACKEND +4"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("lacks %q:\n%s", want, b.String())
		}
	}
	// A plan without gates keeps the table as it was.
	p.Steps[0].Gates, p.Steps[1].Gates = nil, nil
	b.Reset()
	printProgressTable(&b, p)
	if strings.Contains(b.String(), "GATES") {
		t.Errorf("GATES column without gates:\n%s", b.String())
	}
}
