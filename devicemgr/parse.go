package devicemgr

import (
	"fmt"
	"strconv"
)

func parseFloat(s string) (float64, error) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("not a number: %q", clip(s))
	}
	return f, nil
}

func parseInt(s string) (int64, error) {
	i, err := strconv.ParseInt(s, 0, 64)
	if err != nil {
		// Instruments often answer integers as "+1.000000E+00".
		f, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil || f != float64(int64(f)) {
			return 0, fmt.Errorf("not an integer: %q", clip(s))
		}
		return int64(f), nil
	}
	return i, nil
}
