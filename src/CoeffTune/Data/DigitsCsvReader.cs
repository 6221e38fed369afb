using System.Globalization;
using System.Text;

namespace CoeffTune.Data;

/// <summary>
/// scikit-learn's digits.csv(.gz): one row per image, 64 pixel values 0..16 (8x8), then the label 0..9.
/// Values may be written as integers or as floats ("5.0").
/// </summary>
public static class DigitsCsvReader
{
    public const int Side = 8;
    public const float MaxValue = 16f;

    /// <summary>8x8 single-channel images scaled to [0, 1] (value / 16), classes "0".."9".</summary>
    public static ImageDataset Read(string path, string name = "digits")
    {
        using var reader = new StreamReader(DataFiles.OpenMaybeGzip(path), Encoding.ASCII);
        var pixels = new List<float>();
        var labels = new List<int>();
        int lineNo = 0;
        for (string? line; (line = reader.ReadLine()) is not null;)
        {
            lineNo++;
            if (line.Length == 0) continue;
            var cells = line.Split(',');
            if (cells.Length != Side * Side + 1)
                throw DataFiles.Bad(path, $"line {lineNo} has {cells.Length} values, expected {Side * Side + 1} (64 pixels and a label)");
            for (int i = 0; i <= Side * Side; i++)
            {
                if (!double.TryParse(cells[i], NumberStyles.Float, CultureInfo.InvariantCulture, out var v))
                    throw DataFiles.Bad(path, $"line {lineNo}, value {i + 1}: '{cells[i]}' is not a number");
                if (i < Side * Side)
                {
                    if (v < 0 || v > MaxValue) throw DataFiles.Bad(path, $"line {lineNo}, value {i + 1}: {v} is outside 0..16");
                    pixels.Add((float)(v / MaxValue));
                }
                else
                {
                    if (v != Math.Floor(v) || v < 0 || v > 9) throw DataFiles.Bad(path, $"line {lineNo}: label {cells[i]} is not a digit 0..9");
                    labels.Add((int)v);
                }
            }
        }
        if (labels.Count == 0) throw DataFiles.Bad(path, "no rows");
        var classes = Enumerable.Range(0, 10).Select(i => i.ToString(CultureInfo.InvariantCulture)).ToArray();
        return new ImageDataset(pixels.ToArray(), labels.ToArray(), classes, 1, Side, Side, name);
    }
}
