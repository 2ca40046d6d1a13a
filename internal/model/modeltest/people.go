package modeltest

import (
	"fmt"
	"math/rand/v2"
	"strings"
)

// Cities are the categories of PeopleCSV's city column, the most frequent
// first.
var Cities = []string{"paris", "london", "berlin", "rome", "tokyo", "oslo"}

// PeopleCSV is a synthetic CSV of the kind real-world data is: a numeric
// column age, a categorical column city (Cities, 3% missing as NA), a boolean
// member (true/false in mixed case), a numeric income (5% empty) and a yes/no
// target buys, learnable from age, city and member. The same seed gives the
// same bytes.
func PeopleCSV(rows int, seed uint64) string {
	rng := rand.New(rand.NewPCG(seed, 0x706f706c65)) // "people"
	weights := []int{30, 25, 20, 15, 7, 3}
	effect := map[string]float64{"paris": 1.5, "rome": 1.5, "london": -1, "berlin": -1}
	var b strings.Builder
	b.WriteString("age,city,member,income,buys\n")
	for range rows {
		age := 18 + rng.IntN(63)
		city := "NA"
		if rng.IntN(100) >= 3 {
			k := rng.IntN(100)
			for i, w := range weights {
				if k < w {
					city = Cities[i]
					break
				}
				k -= w
			}
		}
		member := rng.IntN(2) == 1
		income := ""
		if rng.IntN(100) >= 5 {
			income = fmt.Sprintf("%.1f", 50+15*rng.NormFloat64())
		}
		score := float64(age-50)/15 + effect[city] + 0.7*rng.NormFloat64()
		if member {
			score += 0.8
		}
		buys := "no"
		if score > 0 {
			buys = "yes"
		}
		m := []string{"false", "true"}[b2i(member)]
		if rng.IntN(4) == 0 {
			m = strings.ToUpper(m)
		}
		fmt.Fprintf(&b, "%d,%s,%s,%s,%s\n", age, city, m, income, buys)
	}
	return b.String()
}

func b2i(v bool) int {
	if v {
		return 1
	}
	return 0
}
