package trunk

import (
	"encoding/json"
	"fmt"
)

func fmtAll(v any) string {
	j, _ := json.Marshal(v)
	return fmt.Sprintf("%+v %s", v, j)
}
