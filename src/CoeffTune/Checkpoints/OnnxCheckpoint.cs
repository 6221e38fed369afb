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
    public static Dictionary<string, Tensor> ReadInitializers(string path)
    {
        var graph = ReadModel(path).Graph;
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

        var result = new Dictionary<string, Tensor>();
        try
        {
            foreach (var (name, proto) in protos)
            {
                var t = ToTensor(proto, path);
                if (t is null) continue;
                if (linearNames.TryGetValue(name, out var linear))
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
