using System.Runtime.InteropServices;
using Google.Protobuf;
using Onnx;
using TorchSharp;
using static TorchSharp.torch;

namespace CoeffTune.Export;

/// <summary>
/// An ONNX graph written node by node on the protobuf classes OnnxSharp generates from onnx.proto. Every
/// node has one output, named after the node, so a name read in the graph says where its value was made.
/// Weights become float32 initializers; small integer and float constants are initializers shared by value.
/// </summary>
internal sealed class OnnxGraph
{
    private readonly HashSet<string> names = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> constants = new(StringComparer.Ordinal);

    public GraphProto Proto { get; } = new();

    /// <summary>Bytes of all initializers so far (protobuf cannot write a message over 2 GB).</summary>
    public long InitializerBytes { get; private set; }

    public OnnxGraph(string name) => Proto.Name = name;

    /// <summary>A float32 initializer holding <paramref name="t"/>'s values (any dtype or device), named <paramref name="name"/>.</summary>
    public string Weight(string name, Tensor t, string? doc = null)
    {
        using var scope = NewDisposeScope();
        var c = t.detach().cpu().to_type(ScalarType.Float32).contiguous();
        var values = c.data<float>().ToArray();
        var proto = new TensorProto { Name = Claim(name), DataType = (int)TensorProto.Types.DataType.Float };
        proto.Dims.AddRange(c.shape);
        proto.RawData = ByteString.CopyFrom(MemoryMarshal.AsBytes(values.AsSpan()));
        if (doc is not null) proto.DocString = doc;
        InitializerBytes += proto.RawData.Length;
        Proto.Initializer.Add(proto);
        return name;
    }

    /// <summary>A 1-D int64 constant (shapes, axes, slice bounds); equal values share one initializer.</summary>
    public string Ints(params long[] values) => Constant("i64_" + string.Join("_", values).Replace('-', 'm'), () =>
    {
        var p = new TensorProto { DataType = (int)TensorProto.Types.DataType.Int64 };
        p.Dims.Add(values.Length);
        p.RawData = ByteString.CopyFrom(MemoryMarshal.AsBytes(values.AsSpan()));
        return p;
    });

    /// <summary>A 0-d int64 constant (a Gather index that drops its axis).</summary>
    public string IntScalar(long value) => Constant("i64_scalar_" + value, () =>
    {
        var p = new TensorProto { DataType = (int)TensorProto.Types.DataType.Int64 };
        p.RawData = ByteString.CopyFrom(BitConverter.GetBytes(value));
        return p;
    });

    /// <summary>A 0-d float32 constant, broadcast by the elementwise operators.</summary>
    public string Float(float value) => Constant("f32_" + BitConverter.SingleToInt32Bits(value).ToString("x8"), () =>
    {
        var p = new TensorProto { DataType = (int)TensorProto.Types.DataType.Float };
        p.RawData = ByteString.CopyFrom(BitConverter.GetBytes(value));
        return p;
    });

    private string Constant(string key, Func<TensorProto> make)
    {
        if (constants.TryGetValue(key, out var existing)) return existing;
        var p = make();
        p.Name = Claim("const." + key);
        Proto.Initializer.Add(p);
        constants[key] = p.Name;
        return p.Name;
    }

    /// <summary>Adds a node of the default domain; its single output carries the node's name, which is returned.</summary>
    public string Node(string op, string name, string[] inputs, params AttributeProto[] attributes)
    {
        var node = new NodeProto { OpType = op, Name = Claim(name) };
        node.Input.AddRange(inputs);
        node.Output.Add(name);
        node.Attribute.AddRange(attributes);
        Proto.Node.Add(node);
        return name;
    }

    /// <summary>A graph input or output; a string dimension is symbolic (dynamic), a number fixed.</summary>
    public void Input(string name, TensorProto.Types.DataType type, params object[] dims) => Proto.Input.Add(ValueInfo(Claim(name), type, dims));

    public void Output(string name, TensorProto.Types.DataType type, params object[] dims) => Proto.Output.Add(ValueInfo(name, type, dims));

    private static ValueInfoProto ValueInfo(string name, TensorProto.Types.DataType type, object[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (var d in dims)
            shape.Dim.Add(d switch
            {
                string param => new TensorShapeProto.Types.Dimension { DimParam = param },
                long or int => new TensorShapeProto.Types.Dimension { DimValue = Convert.ToInt64(d) },
                _ => throw new ArgumentException($"dimension {d} is neither a name nor a size"),
            });
        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)type, Shape = shape } },
        };
    }

    private string Claim(string name)
    {
        if (!names.Add(name)) throw new InvalidOperationException($"ONNX value name '{name}' used twice");
        return name;
    }

    public static AttributeProto AttrInt(string name, long value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };

    public static AttributeProto AttrFloat(string name, float value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = value };

    public static AttributeProto AttrInts(string name, params long[] values)
    {
        var a = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        a.Ints.AddRange(values);
        return a;
    }
}
