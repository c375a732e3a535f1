package config_test

import (
	"testing"

	"github.com/switchyard/switchyard/config"
)

// FuzzParse: any file is either refused with an error or yields specs that
// the device manager accepts; it never panics.
func FuzzParse(f *testing.F) {
	f.Add([]byte(good))
	f.Add([]byte(withModels))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := config.Parse("f.yaml", data)
		if err != nil {
			return
		}
		for i, s := range c.Specs() {
			if err := s.Validate(); err != nil {
				t.Fatalf("accepted config gives a bad spec devices[%d]: %v", i, err)
			}
		}
	})
}
