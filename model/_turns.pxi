# The turns of a step, in the order the Poisson clocks drew them, included in
# model/_book.pyx (issue #24): :meth:`~crossmargin.model.model.CrossMarginModel._agents_act`
# iterates them. At a million traders the agents that act in a step are cold in memory
# (about 40,000 of 1.1 million objects, in a random order), and a turn's first touch of
# its agent waited for memory (``Py_INCREF`` was half the dispatch loop's own time in a
# perf profile of steps 5-45). The iterator asks the processor for the agents of the
# next turns before they are reached (a prefetch changes what is in cache, never what
# is computed): the list slot three turns ahead, the agent object two turns ahead, and,
# one turn ahead, its attribute values (CPython 3.12 keeps them in an array the object's
# pre-header points to, for a class without ``__slots__``).

cdef extern from *:
    """
    static inline void cm_prefetch(const void* p) { __builtin_prefetch(p, 0, 3); }
    #if PY_VERSION_HEX >= 0x030C0000 && PY_VERSION_HEX < 0x030D0000
    #define CM_MANAGED_DICT_SLOT(op) (((PyObject**)(op)) - 3)
    #define CM_HAS_MANAGED_DICT(op) PyType_HasFeature(Py_TYPE(op), Py_TPFLAGS_MANAGED_DICT)
    #else
    #define CM_MANAGED_DICT_SLOT(op) ((PyObject**)NULL)
    #define CM_HAS_MANAGED_DICT(op) 0
    #endif
    """
    void cm_prefetch(const void* p) noexcept nogil
    ctypedef struct PyListObject:
        PyObject** ob_item
    Py_ssize_t PyList_GET_SIZE(object op)
    list PyList_New(Py_ssize_t n)
    void PyList_SET_ITEM(object op, Py_ssize_t i, object item)
    PyObject** CM_MANAGED_DICT_SLOT(PyObject* op) noexcept nogil
    bint CM_HAS_MANAGED_DICT(PyObject* op) noexcept nogil


cdef class Turns:
    """The turns of a step as ``(agent, type, row)``: the agent ``actors[order[k]]``,
    its type's index and its row in that type's plan (:meth:`CrossMarginModel._agents_act`),
    in order, the next turns' agents prefetched.

    Examples:
        >>> import numpy as np
        >>> turns = Turns(["a", "b", "c"], np.array([2, 0]), np.array([1, -1]), np.array([0, 5]))
        >>> list(turns)
        [('c', 1, 0), ('a', -1, 5)]
    """

    cdef list actors
    cdef const long long[:] order, kind, row
    cdef Py_ssize_t k, n

    def __cinit__(self, list actors, order, kind, row):
        self.actors = actors
        self.order = order
        self.kind = kind
        self.row = row
        self.n = len(order)
        if len(kind) != self.n or len(row) != self.n:
            raise ValueError("turns of different lengths")
        cdef Py_ssize_t j, m = len(actors)
        for j in range(self.n):
            if not 0 <= self.order[j] < m:
                raise IndexError("actor index out of range")
        self.k = 0

    def __iter__(self):
        return self

    def __next__(self):
        cdef Py_ssize_t k = self.k
        if k >= self.n:
            raise StopIteration
        self._ahead(k)
        self.k = k + 1
        cdef long long i = self.order[k]
        if i >= PyList_GET_SIZE(self.actors):
            raise IndexError("list index out of range")  # as actors[i] would
        return (self.actors[i], self.kind[k], self.row[k])

    cdef inline void _ahead(self, Py_ssize_t k) noexcept:
        cdef PyObject** items = (<PyListObject*>self.actors).ob_item
        cdef Py_ssize_t size = PyList_GET_SIZE(self.actors)
        cdef PyObject* op
        cdef PyObject** slot
        if k + 3 < self.n and self.order[k + 3] < size:
            cm_prefetch(&items[self.order[k + 3]])
        if k + 2 < self.n and self.order[k + 2] < size:
            op = items[self.order[k + 2]]
            cm_prefetch(op)
            cm_prefetch(<char*>op - 32)  # the pre-header: the attribute values' pointer
        if k + 1 < self.n and self.order[k + 1] < size:
            op = items[self.order[k + 1]]
            if CM_HAS_MANAGED_DICT(op):
                slot = CM_MANAGED_DICT_SLOT(op)
                if slot != NULL and slot[0] != NULL:
                    # a tagged pointer to the values (or a dict): its lines either way
                    cm_prefetch(<void*>((<size_t>slot[0]) & ~(<size_t>7)))
                    cm_prefetch(<void*>(((<size_t>slot[0]) & ~(<size_t>7)) + 64))


def gather(list actors, const long long[:] sel):
    """``[actors[i] for i in sel]``, the agents some places ahead prefetched (the list's
    slot sixteen places ahead, the agent eight ahead): at a million traders the members
    of a type that act in a step are cold, and a miss each, one after the other, was
    most of the dispatch loop's own time.

    Examples:
        >>> import numpy as np
        >>> gather(["a", "b", "c"], np.array([2, 0, 2]))
        ['c', 'a', 'c']
    """
    cdef Py_ssize_t n = sel.shape[0], j, size = PyList_GET_SIZE(actors)
    for j in range(n):
        if not 0 <= sel[j] < size:
            raise IndexError("list index out of range")
    cdef PyObject** items = (<PyListObject*>actors).ob_item
    cdef list out = PyList_New(n)
    cdef PyObject* op
    for j in range(n):
        if j + 16 < n:
            cm_prefetch(&items[sel[j + 16]])
        if j + 8 < n:
            cm_prefetch(items[sel[j + 8]])
        op = items[sel[j]]
        Py_INCREF(<object>op)
        PyList_SET_ITEM(out, j, <object>op)
    return out
