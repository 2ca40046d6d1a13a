package deploy

import "os"

const listSep = os.PathListSeparator
