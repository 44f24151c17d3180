"""diskcache 5.6.3's Cache examples (its tutorial and method docstrings), run against diskstore.

Each section is a doctest: the statements and the outputs are diskcache's. Adaptations, all
of them documented differences (docs/differences.md), are marked ``# diskstore:`` inline:

- ``tag_index`` and ``statistics`` are booleans (diskcache stores ``0``/``1``, which compare
  equal);
- the ``count`` attribute and ``reset('count')`` are diskcache's; ``len(cache)`` is O(1).
- ``@cache.memoize`` without parentheses raises diskcache's ``TypeError``, whose message
  goes on to say how to write it (hence the ``...`` after it).

Every cache is opened in the test's temporary directory instead of ``Cache()``'s own.
"""

from __future__ import annotations

import doctest
import io
from pathlib import Path

import pytest

import diskstore

SECTIONS = {
    "cache basics": """
    >>> cache = Cache(directory)
    >>> cache.close()
    >>> with Cache(cache.directory) as reference:
    ...     reference.set('key', 'value')
    True
    >>> cache.get('key')
    'value'
    >>> cache['key'] = 'value'
    >>> cache['key']
    'value'
    >>> 'key' in cache
    True
    >>> del cache['key']
    >>> from io import BytesIO
    >>> cache.set('key', BytesIO(b'value'), expire=5, read=True, tag='data')
    True
    >>> result = cache.get('key', read=True, expire_time=True, tag=True)
    >>> reader, timestamp, tag = result
    >>> print(reader.read().decode())
    value
    >>> reader.close()
    >>> type(timestamp).__name__
    'float'
    >>> print(tag)
    data
    >>> cache.touch('key', expire=None)
    True
    >>> cache.touch('does-not-exist', expire=1)
    False
    >>> cache.add(b'test', 123)
    True
    >>> cache[b'test']
    123
    >>> cache.add(b'test', 456)
    False
    >>> cache[b'test']
    123
    >>> cache.incr(b'test')
    124
    >>> cache.decr(b'test', 24)
    100
    >>> cache.incr('alice')
    1
    >>> cache.decr('bob', default=-9)
    -10
    >>> cache.incr('carol', default=None)
    Traceback (most recent call last):
        ...
    KeyError: 'carol'
    >>> cache.pop('alice')
    1
    >>> cache.pop('dave', default='does not exist')
    'does not exist'
    >>> cache.set('dave', 0, expire=None, tag='admin')
    True
    >>> result = cache.pop('dave', expire_time=True, tag=True)
    >>> value, timestamp, tag = result
    >>> value
    0
    >>> print(timestamp)
    None
    >>> print(tag)
    admin
    >>> cache.close()
    """,
    "removing items": """
    >>> cache = Cache(directory)
    >>> for key, value in (('key', 'value'), (b'test', 100), ('bob', -10)):
    ...     cache[key] = value
    >>> cache.clear()
    3
    >>> cache.reset('cull_limit', 0)       # Disable automatic evictions.
    0
    >>> for num in range(10):
    ...     _ = cache.set(num, num, expire=1e-9)  # Expire immediately.
    >>> len(cache)
    10
    >>> list(cache)
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
    >>> import time
    >>> time.sleep(0.01)
    >>> cache.expire()
    10
    >>> for num in range(100):
    ...     _ = cache.set(num, num, tag='odd' if num % 2 else 'even')
    >>> cache.evict('even')
    50
    >>> cache.clear()
    50
    >>> for num in range(100):
    ...     _ = cache.set(num, num, tag=(num % 2))
    >>> cache.evict(0)
    50
    >>> cache.drop_tag_index()
    >>> cache.tag_index  # diskstore: a bool (diskcache shows 0)
    False
    >>> cache.create_tag_index()
    >>> cache.tag_index  # diskstore: a bool (diskcache shows 1)
    True
    >>> cache.clear()
    50
    >>> cache.reset('size_limit', int(1e6))
    1000000
    >>> cache.reset('cull_limit', 0)
    0
    >>> for count in range(1000):
    ...     cache[count] = b'A' * 1000
    >>> cache.volume() > int(1e6)
    True
    >>> cache.cull() > 0
    True
    >>> cache.volume() < int(1e6)
    True
    >>> cache.clear() > 0
    True
    >>> cache.close()
    """,
    "ordering and queues": """
    >>> cache = Cache(directory)
    >>> for key in 'cab':
    ...     cache[key] = None
    >>> list(cache)
    ['c', 'a', 'b']
    >>> list(cache.iterkeys())
    ['a', 'b', 'c']
    >>> cache.peekitem()
    ('b', None)
    >>> cache.peekitem(last=False)
    ('c', None)
    >>> key = cache.push('first')
    >>> print(key)
    500000000000000
    >>> cache[key]
    'first'
    >>> _ = cache.push('second')
    >>> _ = cache.push('zeroth', side='front')
    >>> _, value = cache.peek()
    >>> value
    'zeroth'
    >>> key, value = cache.pull()
    >>> print(key)
    499999999999999
    >>> value
    'zeroth'
    >>> cache.volume() < int(1e5)
    True
    >>> cache.close()
    """,
    "statistics and check": """
    >>> cache = Cache(directory)
    >>> cache.stats(enable=True)
    (0, 0)
    >>> for num in range(100):
    ...     _ = cache.set(num, num)
    >>> for num in range(150):
    ...     _ = cache.get(num)
    >>> hits, misses = cache.stats(enable=False, reset=True)
    >>> (hits, misses)
    (100, 50)
    >>> warnings = cache.check()
    >>> warnings
    []
    >>> cache.close()
    """,
    "transactions": """
    >>> cache = Cache(directory)
    >>> with cache.transact():
    ...     total = cache.incr('total', 123.45)
    ...     count = cache.incr('count')
    >>> total
    123.45
    >>> count
    1
    >>> with cache.transact():
    ...     total = cache.get('total')
    ...     count = cache.get('count')
    >>> average = None if count == 0 else total / count
    >>> average
    123.45
    >>> def set_many(cache, mapping):
    ...     with cache.transact():
    ...         for key, value in mapping.items():
    ...             cache[key] = value
    >>> set_many(cache, {'a': 1, 'b': 2})
    >>> cache['a'], cache['b']
    (1, 2)
    >>> cache.close()
    """,
    "settings": """
    >>> cache = Cache(directory, size_limit=int(4e9))
    >>> print(cache.size_limit)
    4000000000
    >>> cache.disk_min_file_size
    32768
    >>> cache.reset('cull_limit', 0)  # Disable automatic evictions.
    0
    >>> cache.set(b'key', 1.234)
    True
    >>> cache.count           # Stale attribute.
    0
    >>> cache.reset('count')  # Prefer: len(cache)
    1
    >>> cache.hits, cache.reset('hits', 5), cache.stats(enable=False)
    (0, 5, (5, 0))
    >>> cache.reset('size', 1)  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
        ...
    SettingsError: size is kept exact by the cache and cannot be set
    >>> cache.close()
    """,
    "eviction policies": """
    >>> cache = Cache(directory)
    >>> print(cache.eviction_policy)
    least-recently-stored
    >>> cache.close()
    >>> cache = Cache(directory, eviction_policy='least-frequently-used')
    >>> print(cache.eviction_policy)
    least-frequently-used
    >>> print(cache.reset('eviction_policy', 'least-recently-used'))
    least-recently-used
    >>> cache.close()
    """,
    "push docstring": """
    >>> cache = Cache(directory)
    >>> print(cache.push('first value'))
    500000000000000
    >>> cache.get(500000000000000)
    'first value'
    >>> print(cache.push('second value'))
    500000000000001
    >>> print(cache.push('third value', side='front'))
    499999999999999
    >>> cache.push(1234, prefix='userids')
    'userids-500000000000000'
    >>> cache.close()
    """,
    "pull docstring": """
    >>> cache = Cache(directory)
    >>> cache.pull()
    (None, None)
    >>> for letter in 'abc':
    ...     print(cache.push(letter))
    500000000000000
    500000000000001
    500000000000002
    >>> key, value = cache.pull()
    >>> print(key)
    500000000000000
    >>> value
    'a'
    >>> _, value = cache.pull(side='back')
    >>> value
    'c'
    >>> cache.push(1234, 'userids')
    'userids-500000000000000'
    >>> _, value = cache.pull('userids')
    >>> value
    1234
    >>> cache.close()
    """,
    "peek docstring": """
    >>> cache = Cache(directory)
    >>> for letter in 'abc':
    ...     print(cache.push(letter))
    500000000000000
    500000000000001
    500000000000002
    >>> key, value = cache.peek()
    >>> print(key)
    500000000000000
    >>> value
    'a'
    >>> key, value = cache.peek(side='back')
    >>> print(key)
    500000000000002
    >>> value
    'c'
    >>> cache.close()
    """,
    "peekitem docstring": """
    >>> cache = Cache(directory)
    >>> for num, letter in enumerate('abc'):
    ...     cache[letter] = num
    >>> cache.peekitem()
    ('c', 2)
    >>> cache.peekitem(last=False)
    ('a', 0)
    >>> cache.close()
    """,
    "iterkeys docstring": """
    >>> cache = Cache(directory)
    >>> for key in [4, 1, 3, 0, 2]:
    ...     cache[key] = key
    >>> list(cache.iterkeys())
    [0, 1, 2, 3, 4]
    >>> list(cache.iterkeys(reverse=True))
    [4, 3, 2, 1, 0]
    >>> cache.close()
    """,
    "transact docstring": """
    >>> cache = Cache(directory)
    >>> with cache.transact():  # Atomically increment two keys.
    ...     _ = cache.incr('total', 123.4)
    ...     _ = cache.incr('count', 1)
    >>> with cache.transact():  # Atomically calculate average.
    ...     average = cache['total'] / cache['count']
    >>> average
    123.4
    >>> cache.close()
    """,
    "memoize": """
    >>> cache = Cache(directory)
    >>> @cache.memoize(expire=1, tag='fib')
    ... def fibonacci(number):
    ...     if number == 0:
    ...         return 0
    ...     elif number == 1:
    ...         return 1
    ...     else:
    ...         return fibonacci(number - 1) + fibonacci(number - 2)
    >>> print(fibonacci(100))
    354224848179261915075
    >>> key = fibonacci.__cache_key__(100)
    >>> print(cache[key])
    354224848179261915075
    >>> @cache.memoize(typed=True, expire=1, tag='fib')
    ... def fibonacci(number):
    ...     if number == 0:
    ...         return 0
    ...     elif number == 1:
    ...         return 1
    ...     else:
    ...         return fibonacci(number - 1) + fibonacci(number - 2)
    >>> print(sum(fibonacci(value) for value in range(100)))
    573147844013817084100
    >>> @cache.memoize
    ... def test():
    ...     pass
    Traceback (most recent call last):
        ...
    TypeError: name cannot be callable...
    >>> cache.close()
    """,
}


@pytest.mark.parametrize("section", list(SECTIONS))
def test_tutorial_section(section: str, tmp_path: Path) -> None:
    parser = doctest.DocTestParser()
    globs = {"Cache": diskstore.Cache, "directory": str(tmp_path / "cache")}
    test = parser.get_doctest(SECTIONS[section], globs, section, None, 0)
    output = io.StringIO()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS, verbose=False)
    runner.run(test, out=output.write)
    assert runner.failures == 0, output.getvalue()
    assert runner.tries == len(test.examples) > 0
