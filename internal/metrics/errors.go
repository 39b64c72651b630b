package metrics

import (
	"reflect"
	"sync"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// codeTally counts the error codes of one response: NONE locally (added once at the end),
// the others to their counters at once.
type codeTally struct {
	m      *Broker
	a      *apiMetrics
	none   int
	failed int
}

func (t *codeTally) add(code int16) {
	if code == 0 {
		t.none++
		return
	}
	t.failed++
	t.m.errorCounter(t.a, code).Inc()
}

// countErrors counts the error codes of a response. Produce and Fetch, the hot ones, are read
// directly, one code per partition (and Fetch's top-level code), as Kafka's errorCounts does;
// any other response has every int16 field named ErrorCode counted, through a walk planned
// once per response type.
func (m *Broker) countErrors(a *apiMetrics, resp kmsg.Response) {
	t := codeTally{m: m, a: a}
	switch r := resp.(type) {
	case *kmsg.ProduceResponse:
		tallyPartitions(&t, &m.produce, r.Topics,
			func(t *kmsg.ProduceResponseTopic) []kmsg.ProduceResponseTopicPartition { return t.Partitions },
			func(p *kmsg.ProduceResponseTopicPartition) int16 { return p.ErrorCode })
	case *kmsg.FetchResponse:
		tallyPartitions(&t, &m.fetch, r.Topics,
			func(t *kmsg.FetchResponseTopic) []kmsg.FetchResponseTopicPartition { return t.Partitions },
			func(p *kmsg.FetchResponseTopicPartition) int16 { return p.ErrorCode })
		t.add(r.ErrorCode) // the top-level code counts too, as in Kafka's errorCounts
	default:
		v := reflect.ValueOf(resp)
		if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
			return
		}
		if p := planOf(v.Elem().Type()); p != nil {
			p.walk(v.Elem(), &t)
		}
	}
	if t.none > 0 {
		a.none.Add(float64(t.none))
	}
}

// tallyPartitions counts the error code of each partition of a Produce or Fetch response,
// and the partitions (and failed ones) in pr.
func tallyPartitions[T, P any](t *codeTally, pr *partitionRequests, topics []T, parts func(*T) []P, code func(*P) int16) {
	before := t.none + t.failed
	failed := t.failed
	for i := range topics {
		ps := parts(&topics[i])
		for j := range ps {
			t.add(code(&ps[j]))
		}
	}
	pr.total.Add(float64(t.none + t.failed - before))
	pr.failed.Add(float64(t.failed - failed))
}

// errPlan says where the error codes of a struct type are: its own ErrorCode field, and the
// struct and slice-of-struct fields that hold some.
type errPlan struct {
	code    int // field index of ErrorCode, -1 if none
	structs []subPlan
	slices  []subPlan
}

type subPlan struct {
	field int
	plan  *errPlan
}

var plans sync.Map // reflect.Type -> *errPlan (nil: no error code inside)

// planOf returns the plan of struct type t, nil when no error code is reachable from it.
func planOf(t reflect.Type) *errPlan {
	if p, ok := plans.Load(t); ok {
		return p.(*errPlan)
	}
	p := buildPlan(t, map[reflect.Type]bool{})
	plans.Store(t, p)
	return p
}

func buildPlan(t reflect.Type, visiting map[reflect.Type]bool) *errPlan {
	if visiting[t] {
		return nil // kmsg has no recursive types; never loop if one appears
	}
	visiting[t] = true
	defer delete(visiting, t)
	p := &errPlan{code: -1}
	for i := range t.NumField() {
		f := t.Field(i)
		switch {
		case f.Name == "ErrorCode" && f.Type.Kind() == reflect.Int16:
			p.code = i
		case f.Type.Kind() == reflect.Struct:
			if sp := buildPlan(f.Type, visiting); sp != nil {
				p.structs = append(p.structs, subPlan{i, sp})
			}
		case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct:
			if sp := buildPlan(f.Type.Elem(), visiting); sp != nil {
				p.slices = append(p.slices, subPlan{i, sp})
			}
		}
	}
	if p.code < 0 && len(p.structs) == 0 && len(p.slices) == 0 {
		return nil
	}
	return p
}

func (p *errPlan) walk(v reflect.Value, t *codeTally) {
	if p.code >= 0 {
		t.add(int16(v.Field(p.code).Int()))
	}
	for _, s := range p.structs {
		s.plan.walk(v.Field(s.field), t)
	}
	for _, s := range p.slices {
		sl := v.Field(s.field)
		for i := range sl.Len() {
			s.plan.walk(sl.Index(i), t)
		}
	}
}
