;; Imports a host function the runtime does not give (there is no file
;; access): it compiles, but does not instantiate.
(module
  (import "airssys" "open" (func $open (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "alloc") (param $len i32) (result i32) (i32.const 1024))
  (func (export "handle") (param $ptr i32) (param $len i32) (result i32)
    (call $open (local.get $ptr) (local.get $len))))
