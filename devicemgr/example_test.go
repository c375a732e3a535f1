package devicemgr_test

import (
	"fmt"

	"github.com/switchyard/switchyard/devicemgr"
)

// A reply that carries two readings, and one that does not match.
func ExampleCompileReplyFormat() {
	f, err := devicemgr.CompileReplyFormat("VOLT %f;CURR %f")
	if err != nil {
		panic(err)
	}
	v, _ := f.Match("VOLT +1.20E+01;CURR 0.25")
	volts, _ := v.Index(0)
	amps, _ := v.Index(1)
	fmt.Println(volts, amps)
	_, err = f.Match("VOLT 12.0;ERR")
	fmt.Println(err)

	re, _ := devicemgr.CompileReplyFormat(`re:(?P<code>[-+]?\d+),"(?P<text>.*)"`)
	v, _ = re.Match(`-113,"Undefined header"`)
	code, _ := v.Name("code")
	fmt.Println(code)
	// Output:
	// +1.20E+01 0.25
	// reply "VOLT 12.0;ERR": want ";CURR" at byte 9 (format "VOLT %f;CURR %f")
	// -113
}
