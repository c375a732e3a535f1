package alarm_test

import (
	"fmt"
	"log/slog"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func fmtSscan(s string, v *float64) (int, error) { return fmt.Sscan(s, v) }

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }
