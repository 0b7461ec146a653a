package luaplane

// Exported for the tests of package luaplane_test, which run kns.lua in
// nginx (the package nginx, which finds the Lua module, imports this one).
var (
	BadParts   = badParts
	BadIndexes = badIndexes
	BigTable   = bigTable
)
