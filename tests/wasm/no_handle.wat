;; Breaks the guest ABI: memory and alloc, but no `handle` export. It
;; compiles, but does not instantiate as an actor.
(module
  (memory (export "memory") 1)
  (func (export "alloc") (param $len i32) (result i32) (i32.const 1024)))
