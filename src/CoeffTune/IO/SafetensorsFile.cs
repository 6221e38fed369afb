using System.Buffers.Binary;
using System.Text.Json;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace CoeffTune.IO;

/// <summary>
/// Reads .safetensors files that may come from anywhere: the header is checked against the file before any
/// tensor is allocated (its length within the file, every dtype known, every shape's byte size equal to its
/// offsets, the offsets inside the data and neither overlapping nor leaving gaps), so a damaged or hostile
/// file is an error naming it, never an allocation of gigabytes or a native crash.
/// </summary>
public static class SafetensorsFile
{
    /// <summary>Headers above this are refused (real ones are kilobytes; the format's own limit is 100 MB).</summary>
    public const long MaxHeaderBytes = 100L << 20;

    private static readonly Dictionary<string, int> DtypeBytes = new()
    {
        ["F64"] = 8, ["F32"] = 4, ["F16"] = 2, ["BF16"] = 2, ["I64"] = 8, ["I32"] = 4, ["I16"] = 2, ["I8"] = 1, ["U8"] = 1, ["BOOL"] = 1,
    };

    /// <summary>Checks the file's structure and returns each tensor's shape by name, in file order; throws <see cref="InvalidDataException"/> naming the file and what is wrong.</summary>
    public static IReadOnlyDictionary<string, long[]> Validate(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path} does not exist", path);
        using var f = File.OpenRead(path);
        long fileLength = f.Length;
        Span<byte> lengthBytes = stackalloc byte[8];
        if (f.Read(lengthBytes) != 8) throw Bad(path, $"only {fileLength} bytes, too short for a safetensors header");
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(lengthBytes);
        if (headerLength > (ulong)Math.Max(0, fileLength - 8))
            throw Bad(path, $"header length field says {headerLength:N0} bytes, the file has {fileLength - 8:N0} after it; truncated or not safetensors");
        if (headerLength > MaxHeaderBytes) throw Bad(path, $"header of {headerLength:N0} bytes is over the {MaxHeaderBytes:N0} allowed");
        var header = new byte[headerLength];
        f.ReadExactly(header);
        long dataLength = fileLength - 8 - (long)headerLength;
        JsonDocument doc;
        try { doc = JsonDocument.Parse(header); }
        catch (JsonException e) { throw Bad(path, $"header is not valid JSON ({e.Message})"); }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw Bad(path, "header is not a JSON object");
            var spans = new List<(long Begin, long End, string Name)>();
            var shapes = new Dictionary<string, long[]>();
            foreach (var entry in doc.RootElement.EnumerateObject())
            {
                if (entry.Name == "__metadata__") continue;
                var t = entry.Value;
                if (t.ValueKind != JsonValueKind.Object
                    || !t.TryGetProperty("dtype", out var dtype) || dtype.ValueKind != JsonValueKind.String
                    || !t.TryGetProperty("shape", out var shape) || shape.ValueKind != JsonValueKind.Array
                    || !t.TryGetProperty("data_offsets", out var offsets) || offsets.ValueKind != JsonValueKind.Array || offsets.GetArrayLength() != 2)
                    throw Bad(path, $"tensor '{entry.Name}' lacks a dtype, shape or data_offsets pair");
                if (!DtypeBytes.TryGetValue(dtype.GetString()!, out int size))
                    throw Bad(path, $"tensor '{entry.Name}' has dtype {dtype.GetString()}, which is not read here");
                long bytes = size;
                foreach (var d in shape.EnumerateArray())
                {
                    if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out long n) || n < 0)
                        throw Bad(path, $"tensor '{entry.Name}' has a shape entry {d.GetRawText()}, not a non-negative integer");
                    if (n > 0 && bytes > long.MaxValue / n) throw Bad(path, $"tensor '{entry.Name}' has a shape {shape.GetRawText()} too large to exist");
                    bytes *= n;
                }
                if (!offsets[0].TryGetInt64(out long begin) || !offsets[1].TryGetInt64(out long end) || begin < 0 || end < begin)
                    throw Bad(path, $"tensor '{entry.Name}' has data_offsets {offsets.GetRawText()}, not an ordered pair of offsets");
                if (end - begin != bytes)
                    throw Bad(path, $"tensor '{entry.Name}' of shape {shape.GetRawText()} {dtype.GetString()} needs {bytes:N0} bytes, its offsets span {end - begin:N0}");
                if (end > dataLength)
                    throw Bad(path, $"tensor '{entry.Name}' ends at byte {end:N0} of the data, which has {dataLength:N0}; truncated");
                spans.Add((begin, end, entry.Name));
                shapes[entry.Name] = shape.EnumerateArray().Select(d => d.GetInt64()).ToArray();
            }
            long at = 0;
            foreach (var s in spans.OrderBy(s => s.Begin).ThenBy(s => s.End))
            {
                if (s.Begin < at) throw Bad(path, $"tensor '{s.Name}' overlaps the tensor before it (bytes {s.Begin:N0}-{s.End:N0})");
                if (s.Begin > at) throw Bad(path, $"a gap of {s.Begin - at:N0} bytes before tensor '{s.Name}'");
                at = s.End;
            }
            if (at != dataLength) throw Bad(path, $"{dataLength - at:N0} bytes after the last tensor");
            return shapes;
        }
    }

    /// <summary>Validates, then loads every tensor.</summary>
    public static Dictionary<string, Tensor> Load(string path)
    {
        Validate(path);
        try { return Safetensors.LoadStateDict(path); }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new InvalidDataException($"{path} is not a readable safetensors file ({e.GetType().Name}: {FirstLine(e.Message)})", e);
        }
    }

    private static string FirstLine(string s) => s.Split('\n')[0].Trim();

    private static InvalidDataException Bad(string path, string what) => new($"{path}: {what}");
}
