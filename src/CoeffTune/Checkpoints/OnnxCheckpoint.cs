using System.Runtime.InteropServices;
using Google.Protobuf;
using Onnx;
using static TorchSharp.torch;

namespace CoeffTune.Checkpoints;

/// <summary>
/// The weights of an exported transformer, read from an ONNX file's initializers. Exporters keep the
/// Hugging Face names of embeddings, biases and LayerNorms but give the Linear weights anonymous
/// names and store them [in, out] for MatMul; each such weight is named after the bias its MatMul's
/// output is added to, and transposed back to a Linear's [out, in].
/// </summary>
public static class OnnxCheckpoint
{
    /// <summary>Parses the model protobuf. Protobuf's size limit is raised so that models of hundreds of MB parse.</summary>
    public static ModelProto ReadModel(string path)
    {
        CheckpointFile.RequireFile(path);
        try
        {
            using var stream = File.OpenRead(path);
            using var input = CodedInputStream.CreateWithLimits(stream, int.MaxValue, 100);
            var model = ModelProto.Parser.ParseFrom(input);
            if (model.Graph is null || model.Graph.Node.Count == 0)
                throw new InvalidDataException($"{path} holds no ONNX graph; it may be truncated or not an ONNX model");
            return model;
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new InvalidDataException($"{path} is not a readable ONNX model ({e.Message}); it may be truncated", e);
        }
    }

    /// <summary>The float initializers of <paramref name="path"/> under Hugging Face names, as float32 tensors, Linear weights [out, in].</summary>
    public static Dictionary<string, Tensor> ReadInitializers(string path) => Read(path, out _);

    /// <summary>As <see cref="ReadInitializers"/>; also the number of attention heads if the graph shows it.</summary>
    public static Dictionary<string, Tensor> Read(string path, out int? heads)
    {
        var graph = ReadModel(path).Graph;
        heads = InferHeads(graph);
        var protos = new Dictionary<string, TensorProto>();
        foreach (var init in graph.Initializer) protos[init.Name] = init;

        var consumers = new Dictionary<string, List<NodeProto>>();
        foreach (var node in graph.Node)
            foreach (var input in node.Input)
            {
                if (!consumers.TryGetValue(input, out var list)) consumers[input] = list = new List<NodeProto>();
                list.Add(node);
            }

        // Anonymous MatMul weights -> name of the Linear they belong to.
        var linearNames = new Dictionary<string, string>();
        foreach (var node in graph.Node.Where(n => n.OpType == "MatMul" && n.Input.Count == 2))
        {
            var weight = node.Input[1];
            if (!protos.TryGetValue(weight, out var w) || w.Dims.Count != 2) continue;
            if (!consumers.TryGetValue(node.Output[0], out var next)) continue;
            foreach (var add in next.Where(n => n.OpType == "Add"))
            {
                var bias = add.Input.FirstOrDefault(i => i != node.Output[0]);
                if (bias is not null && protos.ContainsKey(bias) && bias.EndsWith(".bias", StringComparison.Ordinal))
                {
                    linearNames[weight] = bias[..^".bias".Length] + ".weight";
                    break;
                }
            }
        }

        // Gemm (as exported for the pooler) holds a Linear's [out, in] weight unless transB is 0.
        var transposedGemm = new HashSet<string>();
        foreach (var node in graph.Node.Where(n => n.OpType == "Gemm" && n.Input.Count >= 2))
        {
            var transB = node.Attribute.FirstOrDefault(a => a.Name == "transB")?.I ?? 0;
            var weight = node.Input[1];
            if (transB != 0 || !protos.ContainsKey(weight)) continue;
            transposedGemm.Add(weight);
            if (node.Input.Count == 3 && node.Input[2].EndsWith(".bias", StringComparison.Ordinal) && !weight.EndsWith(".weight", StringComparison.Ordinal))
                linearNames[weight] = node.Input[2][..^".bias".Length] + ".weight";
        }

        var result = new Dictionary<string, Tensor>();
        try
        {
            foreach (var (name, proto) in protos)
            {
                var t = ToTensor(proto, path);
                if (t is null) continue;
                if (transposedGemm.Contains(name) && !linearNames.ContainsKey(name))
                {
                    var transposed = t.t().contiguous();
                    t.Dispose();
                    result.Add(name, transposed);
                }
                else if (linearNames.TryGetValue(name, out var linear))
                {
                    var transposed = t.t().contiguous();
                    t.Dispose();
                    if (!result.TryAdd(linear, transposed))
                        throw new InvalidDataException($"{path}: two MatMul weights both resolve to '{linear}'");
                }
                else if (!result.TryAdd(name, t))
                    throw new InvalidDataException($"{path}: initializer '{name}' collides with a recovered Linear weight name");
            }
        }
        catch
        {
            CheckpointFile.DisposeAll(result.Values);
            throw;
        }
        return CheckpointFile.Normalize(result);
    }

    /// <summary>
    /// Heads H from the attention's head split: a Reshape to Concat(batch, length, H, d) whose last two parts
    /// are constants with H * d the width of a query bias. Null when the graph has no such pattern.
    /// </summary>
    private static int? InferHeads(GraphProto graph)
    {
        var width = graph.Initializer.FirstOrDefault(i => i.Name.EndsWith("attention.self.query.bias", StringComparison.Ordinal) && i.Dims.Count == 1)?.Dims[0];
        if (width is null) return null;
        var producers = new Dictionary<string, NodeProto>();
        foreach (var node in graph.Node) foreach (var o in node.Output) producers[o] = node;
        var inits = graph.Initializer.ToDictionary(i => i.Name);
        long? Scalar(string name)
        {
            var t = inits.GetValueOrDefault(name)
                ?? (producers.TryGetValue(name, out var c) && c.OpType == "Constant" ? c.Attribute.FirstOrDefault(a => a.Name == "value")?.T : null);
            if (t is null || t.DataType != (int)TensorProto.Types.DataType.Int64) return null;
            var values = t.Int64Data.Count > 0 ? t.Int64Data.ToArray() : MemoryMarshal.Cast<byte, long>(t.RawData.Span).ToArray();
            return values.Length == 1 ? values[0] : null;
        }
        foreach (var reshape in graph.Node.Where(n => n.OpType == "Reshape" && n.Input.Count == 2))
        {
            if (!producers.TryGetValue(reshape.Input[1], out var concat) || concat.OpType != "Concat" || concat.Input.Count != 4) continue;
            if (Scalar(concat.Input[2]) is long h && Scalar(concat.Input[3]) is long d && h > 0 && h * d == width) return (int)h;
        }
        return null;
    }

    /// <summary>A float initializer as a float32 tensor; null for integer constants (shapes, indices).</summary>
    private static Tensor? ToTensor(TensorProto p, string path)
    {
        var dims = p.Dims.ToArray();
        long count = dims.Aggregate(1L, (a, b) => a * b);
        if (p.DataLocation == TensorProto.Types.DataLocation.External)
            throw new InvalidDataException($"{path}: initializer '{p.Name}' is stored in an external data file, which is not supported; re-export the model as a single file");
        var type = (TensorProto.Types.DataType)p.DataType;
        float[] values;
        var raw = p.RawData.Span;
        switch (type)
        {
            case TensorProto.Types.DataType.Float:
                values = raw.Length > 0 ? MemoryMarshal.Cast<byte, float>(raw).ToArray() : p.FloatData.ToArray();
                break;
            case TensorProto.Types.DataType.Double:
                values = (raw.Length > 0 ? MemoryMarshal.Cast<byte, double>(raw).ToArray() : p.DoubleData.ToArray()).Select(d => (float)d).ToArray();
                break;
            case TensorProto.Types.DataType.Float16:
                // Without raw data, half values sit in int32_data, one per entry.
                values = raw.Length > 0 ? MemoryMarshal.Cast<byte, Half>(raw).ToArray().Select(h => (float)h).ToArray()
                    : p.Int32Data.Select(i => (float)BitConverter.UInt16BitsToHalf((ushort)i)).ToArray();
                break;
            case TensorProto.Types.DataType.Bfloat16:
                // bfloat16 is the top half of a float32.
                values = (raw.Length > 0 ? MemoryMarshal.Cast<byte, ushort>(raw).ToArray() : p.Int32Data.Select(i => (ushort)i).ToArray())
                    .Select(b => BitConverter.Int32BitsToSingle(b << 16)).ToArray();
                break;
            default:
                return null;
        }
        if (values.Length != count)
            throw new InvalidDataException($"{path}: initializer '{p.Name}' of shape [{string.Join(", ", dims)}] holds {values.Length} values, expected {count}");
        return tensor(values, dims, ScalarType.Float32);
    }
}
