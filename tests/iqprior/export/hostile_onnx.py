"""Small hostile ONNX files built with onnx.helper (tests and fuzzing of the runner, issue 33)."""
from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper, numpy_helper


def identity(meta=None, dims=("B", 3, "H", "W")):
    """An image -> image Identity model with ``iqprior.*``-style metadata ``meta``."""
    x = helper.make_tensor_value_info("image", TensorProto.FLOAT, list(dims))
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, list(dims))
    g = helper.make_graph([helper.make_node("Identity", ["image"], ["output"])], "g", [x], [y])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    for k, v in (meta or {}).items():
        e = m.metadata_props.add()
        e.key, e.value = k, v
    return m


def loop(trip=2**62):
    """A graph that passes the image through a Loop of ``trip`` iterations."""
    x = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["B", 3, "H", "W"])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, ["B", 3, "H", "W"])
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]), helper.make_node("Identity", ["v_in"], ["v_out"])],
        "body", [helper.make_tensor_value_info("i", TensorProto.INT64, []),
                 helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
                 helper.make_tensor_value_info("v_in", TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("v_out", TensorProto.FLOAT, None)])
    nodes = [helper.make_node("Constant", [], ["M"], value=numpy_helper.from_array(np.array(trip, np.int64))),
             helper.make_node("Constant", [], ["c"], value=numpy_helper.from_array(np.array(True))),
             helper.make_node("Loop", ["M", "c", "image"], ["output"], body=body)]
    g = helper.make_graph(nodes, "g", [x], [y])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m


def const_of_shape(n=2**33):
    """A graph whose second output is ``n`` floats of ones (an allocation the file does not hold)."""
    x = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["B", 3, "H", "W"])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, ["B", 3, "H", "W"])
    z = helper.make_tensor_value_info("big", TensorProto.FLOAT, None)
    nodes = [helper.make_node("Constant", [], ["s"], value=numpy_helper.from_array(np.array([n], np.int64))),
             helper.make_node("ConstantOfShape", ["s"], ["big"], value=numpy_helper.from_array(np.array([1.0], np.float32))),
             helper.make_node("Identity", ["image"], ["output"])]
    g = helper.make_graph(nodes, "g", [x], [y, z])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m

