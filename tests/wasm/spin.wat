;; Never finishes a message. A non-empty message is the name of an actor to
;; tell first (the message itself is sent), so a test knows the guest is
;; running; then it loops forever, counting.
(module
  (import "airssys" "send" (func $send (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (global $spins (mut i64) (i64.const 0))
  (func (export "alloc") (param $len i32) (result i32) (i32.const 1024))
  (func (export "handle") (param $ptr i32) (param $len i32) (result i32)
    (if (local.get $len)
      (then
        (drop (call $send (local.get $ptr) (local.get $len)
                          (local.get $ptr) (local.get $len)))))
    (loop $forever
      (global.set $spins (i64.add (global.get $spins) (i64.const 1)))
      (br $forever))
    (i32.const 0)))
