;; Grows its memory a page (64 KiB) at a time, as many pages as the
;; message's first four bytes say (u32, little-endian; 0xFFFF_FFFF grows
;; without bound), then answers a request with its size in pages (i32).
;; A refused growth (memory.grow returning -1) traps.
(module
  (import "airssys" "reply" (func $reply (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "alloc") (param $len i32) (result i32) (i32.const 1024))
  (func (export "handle") (param $ptr i32) (param $len i32) (result i32)
    (local $left i32)
    (local.set $left (i32.load (local.get $ptr)))
    (block $done
      (loop $grow
        (br_if $done (i32.eqz (local.get $left)))
        (if (i32.eq (memory.grow (i32.const 1)) (i32.const -1))
          (then unreachable))
        (local.set $left (i32.sub (local.get $left) (i32.const 1)))
        (br $grow)))
    (i32.store (i32.const 16) (memory.size))
    (drop (call $reply (i32.const 16) (i32.const 4)))
    (i32.const 0)))
