package eventstore_test

import (
	"testing"

	"github.com/studyd/studyd/eventstore"
	"github.com/studyd/studyd/eventstore/storetest"
)

func TestMemoryStoreConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) eventstore.Store { return eventstore.NewMemoryStore() })
}

func TestMemoryStoreRefusalIndexConformance(t *testing.T) {
	storetest.RunRefusalIndex(t, func(t *testing.T) storetest.RefusalStore { return eventstore.NewMemoryStore() })
}
