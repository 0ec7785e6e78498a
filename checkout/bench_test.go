package checkout_test

import (
	"fmt"
	"testing"

	"github.com/acp-bridge/bridge/checkout"
	ct "github.com/acp-bridge/bridge/internal/checkouttest"
)

// The engine without HTTP: what one operation costs in CPU and storage.
// The load tool (cmd/loadtest) measures the same through the REST door.

func BenchmarkEngineCreate(b *testing.B) {
	st := ct.New(b, ct.Options{})
	req := checkout.CreateRequest{Items: []checkout.Item{{ID: "shirt-m", Quantity: 1}}, ShipTo: addr}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		res := st.Engine.Create(b.Context(), checkout.Caller{Owner: ct.AgentName, Key: fmt.Sprint("k", i), Op: "create", BodyHash: "h"}, req)
		if res.Err != nil {
			b.Fatal(res.Err)
		}
	}
}

func BenchmarkEngineGet(b *testing.B) {
	st := ct.New(b, ct.Options{})
	res := st.Engine.Create(b.Context(), checkout.Caller{Owner: ct.AgentName}, checkout.CreateRequest{Items: []checkout.Item{{ID: "shirt-m", Quantity: 1}}, ShipTo: addr})
	b.ReportAllocs()
	for b.Loop() {
		if r := st.Engine.Get(b.Context(), ct.AgentName, res.Session.ID); r.Err != nil {
			b.Fatal(r.Err)
		}
	}
}

func BenchmarkEngineComplete(b *testing.B) {
	st := ct.New(b, ct.Options{})
	ids := make([]string, b.N)
	for i := range ids {
		res := st.Engine.Create(b.Context(), checkout.Caller{Owner: ct.AgentName}, checkout.CreateRequest{Items: []checkout.Item{{ID: "ebook", Quantity: 1}}})
		ids[i] = res.Session.ID
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		res := st.Engine.Complete(b.Context(), checkout.Caller{Owner: ct.AgentName, Key: fmt.Sprint("c", i), Op: "complete " + ids[i], BodyHash: "h"}, ids[i], pay("spt_4242"))
		if res.Err != nil || res.Session.Order == nil {
			b.Fatalf("%+v", res)
		}
	}
}
